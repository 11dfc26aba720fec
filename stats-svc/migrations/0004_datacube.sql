-- Where the datacube job got to, per account and API: the last day pulled.
CREATE TABLE datacube_progress (
    account  text NOT NULL,
    api      text NOT NULL,
    last_day date NOT NULL,
    PRIMARY KEY (account, api)
);

-- Leases of jobs that exactly one replica runs at a time: a replica runs the job
-- while it holds the lease, and another takes it over only once it expired.
CREATE TABLE job_leases (
    job         text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL
);
