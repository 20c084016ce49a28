"""The legacy sunset (issue 12): sources, backups, phases and their guards."""
