"""Evidence: record schemas, the writer (the one choke point), the SQL index, verify/show/query."""
