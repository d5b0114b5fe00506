"""The `floor` bench's URLconf (bench/floor.py says what it measures): the project's URLs, with
/v1/runs and /v1/runs/<id>/complete answered by views that keep the work every charge path keeps
and, for the money, make one locking statement (FLOOR_PATH=update) or call the PL/pgSQL sketch of
bench/floor_plpgsql.sql (FLOOR_PATH=sketch). Served only by that bench's servers."""

import os
import secrets

from django.conf import settings
from django.db import connection, transaction
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response

from config.urls import urlpatterns as project_urlpatterns

from usage.api.serializers import AuthorizeIn, CompleteIn, _dt, credits_str
from usage.api.views import WorkspaceAPIView, _validated
from usage.services import NodeInput, request_hash

LOCK_WALLET = ("UPDATE billing_wallet SET updated_at = now() WHERE workspace_id = %s "
               "RETURNING monthly, purchased, reserved")


def _nodes(data: dict) -> list[NodeInput]:
    """The completion's nodes, as the API's RunCompleteView builds them."""
    return [NodeInput(node["name"], node["model"], node["input_tokens"], node["output_tokens"],
                      tuple((tool["name"], tool["calls"]) for tool in node.get("tools", [])))
            for node in data["nodes"]]


def _one_locking_statement(workspace_id: int) -> tuple:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(LOCK_WALLET, [workspace_id])
        return cursor.fetchone()


class FloorAuthorize(WorkspaceAPIView):
    def post(self, request):
        data = _validated(AuthorizeIn, request.data)
        fingerprint = request_hash(data)
        monthly, _, _ = _one_locking_statement(self.workspace.pk)
        return Response({"id": data.get("id"), "status": "running", "reserved": str(monthly),
                         "max_output_tokens": data.get("max_output_tokens"), "expires_at": fingerprint[:20]},
                        status=201)


class FloorComplete(WorkspaceAPIView):
    def post(self, request, run_id):
        data = _validated(CompleteIn, request.data)
        nodes = _nodes(data)
        fingerprint = request_hash(data)
        monthly, purchased, reserved = _one_locking_statement(self.workspace.pk)
        return Response({
            "id": run_id, "workflow": "", "agent": "", "model": "", "member": self.membership.user.email,
            "status": data["status"], "reserved": str(reserved), "credits": str(monthly), "over_reservation": False,
            "created_at": fingerprint[:20], "completed_at": str(purchased),
            "nodes": [{"name": node.name, "model": node.model, "input_tokens": node.input_tokens,
                       "output_tokens": node.output_tokens, "credits": ""} for node in nodes],
        })


class SketchAuthorize(WorkspaceAPIView):
    def post(self, request):
        data = _validated(AuthorizeIn, request.data)
        public_id = data.get("id") or "run_" + secrets.token_urlsafe(12)
        with connection.cursor() as cursor:  # one statement, its own transaction
            cursor.execute("SELECT * FROM floor_sketch_authorize(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", [
                self.workspace.pk, self.membership.pk, data["workflow"], data["agent"], data["model"], public_id,
                data.get("estimated_input_tokens"), data.get("max_output_tokens"), request_hash(data), timezone.now(),
                settings.RESERVATION_TTL_SECONDS])
            public_id, reserved, max_output_tokens, expires_at, refused = cursor.fetchone()
        if refused:
            return Response({"error": {"code": refused}}, status=402)
        return Response({"id": public_id, "status": "running", "reserved": credits_str(reserved),
                         "max_output_tokens": max_output_tokens, "expires_at": _dt(expires_at)}, status=201)


class SketchComplete(WorkspaceAPIView):
    def post(self, request, run_id):
        data = _validated(CompleteIn, request.data)
        nodes = _nodes(data)
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM floor_sketch_complete(%s, %s, %s, %s, %s, %s, %s, %s, %s)", [
                self.workspace.pk, run_id, data["status"], [node.name for node in nodes], [node.model for node in nodes],
                [node.input_tokens for node in nodes], [node.output_tokens for node in nodes], request_hash(data), now])
            credits, _, workflow, agent, model, email, reserved, created_at = cursor.fetchone()
        return Response({
            "id": run_id, "workflow": workflow, "agent": agent, "model": model, "member": email, "status": data["status"],
            "reserved": credits_str(reserved), "credits": credits_str(credits), "over_reservation": credits > reserved,
            "created_at": _dt(created_at), "completed_at": _dt(now),
            "nodes": [{"name": node.name, "model": node.model, "input_tokens": node.input_tokens,
                       "output_tokens": node.output_tokens} for node in nodes],
        })


VIEWS = {"update": (FloorAuthorize, FloorComplete), "sketch": (SketchAuthorize, SketchComplete)}
authorize_view, complete_view = VIEWS[os.environ.get("FLOOR_PATH", "update")]

urlpatterns = [
    path("v1/runs", authorize_view.as_view()),
    path("v1/runs/<str:run_id>/complete", complete_view.as_view()),
    *project_urlpatterns,
]
