"""manage.py reconcile: check every ledger invariant; exit non-zero naming the workspace on a mismatch."""

from django.core.management.base import BaseCommand, CommandError

from operations.reconcile import reconcile_all


class Command(BaseCommand):
    help = "Checks every money invariant of every workspace (buckets vs ledger, holds vs open runs, counters)."

    def handle(self, *args, **options):
        verbose = options["verbosity"] >= 2

        def progress(done, total, workspace, problems):
            for problem in problems:
                self.stderr.write(self.style.ERROR(problem))
            if verbose:
                self.stdout.write(f"[{done}/{total}] {workspace.slug}: {'MISMATCH' if problems else 'ok'}")
            elif done % 100 == 0 or done == total:
                self.stdout.write(f"checked {done}/{total} workspaces")

        results = reconcile_all(progress=progress)
        for problem in results.get("", []):
            self.stderr.write(self.style.ERROR(problem))
        bad = sorted(slug for slug in results if slug)
        if results:
            names = ", ".join(bad) if bad else "ledger-wide check"
            count = sum(len(problems) for problems in results.values())
            raise CommandError(f"reconcile found {count} problem(s) in: {names}")
        self.stdout.write(self.style.SUCCESS("reconcile: every workspace agrees with its ledger, runs and counters."))
