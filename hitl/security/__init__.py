"""Who may do what, proven: decision signatures (``signing``), API tokens (``tokens``), OIDC (``oidc``),
one-click links (``links``) and payload encryption (``codec``).

May import: ``hitl.notify``, ``hitl._wire``, the kernel leaves (``identity`` among them), and the store's
types to be given a store. Invariants: an identity is what a credential proves, never a name a caller
typed; keys and tokens never reach logs, histories or the trail.
"""
