"""Guards: small checks the step loop walks in order; each returns a Decision, none raises to deny."""
