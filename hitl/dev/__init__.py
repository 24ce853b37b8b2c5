"""The local stack for the demo and the tests (``stack``): Temporal's dev server and an embedded PostgreSQL,
both from wheels, nothing downloaded at run time. Never imported by production code paths."""
