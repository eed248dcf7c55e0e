-- Settled usage of metered requests (virtual keys, users with rules), one row per UTC day,
-- key, user, backend and model, added to by every instance (upsert-add); read for budget
-- baselines and usage reports. `key_id`/`user_id` are '' when the request had none; cost is in
-- micro-dollars from the configured price table (0 when the model has no price).
CREATE TABLE usage_daily (
    day                  TEXT NOT NULL,
    key_id               TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    backend              TEXT NOT NULL,
    model                TEXT NOT NULL,
    requests             BIGINT NOT NULL,
    input_tokens         BIGINT NOT NULL,
    output_tokens        BIGINT NOT NULL,
    cached_input_tokens  BIGINT NOT NULL,
    cost_micros          BIGINT NOT NULL,
    PRIMARY KEY (day, key_id, user_id, backend, model)
);
CREATE INDEX usage_daily_key ON usage_daily (key_id, day);
CREATE INDEX usage_daily_user ON usage_daily (user_id, day);
