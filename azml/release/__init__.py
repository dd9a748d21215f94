"""Release controller: canary analysis, promotion gate, traffic ladder, rollback."""
