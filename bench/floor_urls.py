"""The `floor` bench's URLconf (bench/floor.py says what it measures): the project's URLs, with
/v1/runs and /v1/runs/<id>/complete answered by views that keep the work every charge path keeps
and, for the money, make one locking statement. Served only by that bench's floor server."""

from django.db import connection, transaction
from django.urls import path
from rest_framework.response import Response

from config.urls import urlpatterns as project_urlpatterns

from usage.api.serializers import AuthorizeIn, CompleteIn
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


urlpatterns = [
    path("v1/runs", FloorAuthorize.as_view()),
    path("v1/runs/<str:run_id>/complete", FloorComplete.as_view()),
    *project_urlpatterns,
]
