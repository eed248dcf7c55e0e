-- The usage-journal files whose records a flush wrote to `usage_daily`, recorded in the same
-- transaction: an instance that finds such a file after a crash (the flush committed, the file
-- was not deleted yet) deletes it instead of counting it again. `id` is the file's name without
-- `.journal` (or a flush's own id when no journal is kept); `recorded_at` is Unix seconds. A
-- mark is dropped by the flush after the one that made it (its file is deleted by then), or
-- after 30 days when its instance died before that.
CREATE TABLE usage_batches (
    id           TEXT PRIMARY KEY,
    recorded_at  BIGINT NOT NULL
);
CREATE INDEX usage_batches_recorded_at ON usage_batches (recorded_at);
