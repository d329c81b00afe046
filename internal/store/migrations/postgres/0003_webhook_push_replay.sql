-- A push delivered again under a new delivery id (a captured delivery
-- replayed) is told from a new push by an earlier delivery of the same
-- push that was acted upon: same commit, ref, repository, forge and event
-- type, accepted or superseded. The intake looks up the commits of the
-- pushes it is about to queue in this index, which holds only those rows.
CREATE INDEX ix_webhook_event_pushed ON tb_webhook_event (sha) WHERE outcome IN ('accepted', 'superseded');
