-- An agent turn's answer, kept for an hour with the digest of its request
-- (issue 18): a retry with its turn id that a load balancer sends to
-- another replica gets the answer the first one gave, not "recorded
-- earlier"; one with a different body is refused as a reused turn id.
CREATE TABLE turn_answers (
  key    TEXT PRIMARY KEY COLLATE "C",
  answer TEXT NOT NULL,
  digest TEXT NOT NULL,
  at_ms  BIGINT NOT NULL
);
CREATE INDEX turn_answers_by_age ON turn_answers (at_ms);
