-- One-click decision links: the id of each link once it has been used, so that a link decides
-- once. Only the link's id is kept, never its token (a bearer credential).
CREATE TABLE IF NOT EXISTS {links} (
    id          text PRIMARY KEY,                  -- the link's unique id (the token's jti)
    approval_id text NOT NULL,
    approver    text NOT NULL,
    decision    text NOT NULL,                     -- approved | rejected
    used_at     timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL              -- past it the token is refused anyway: the row may go
);
CREATE INDEX IF NOT EXISTS {links_expires} ON {links} (expires_at);
