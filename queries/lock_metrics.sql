-- Partition maintenance takes its locks in one order, parent first, so it cannot deadlock with
-- itself or with a replay (which only ever holds row locks under the parent).
LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE;
