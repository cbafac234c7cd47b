"""Plain functions for the rules. They take plain values (ids, dates, scopes), never a request."""
