-- Tokens of the deploy API. Only the SHA-256 of a token is kept: a token
-- is 32 random bytes, so its hash cannot be reversed or guessed, and the
-- lookup by hash needs no slow password hash. scopes is the token's scopes
-- separated by spaces (read, deploy:shop/production, lock:shop/*).
CREATE TABLE tb_api_token (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE CHECK (name <> ''),
    hash         TEXT    NOT NULL UNIQUE CHECK (length(hash) = 64),
    scopes       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
