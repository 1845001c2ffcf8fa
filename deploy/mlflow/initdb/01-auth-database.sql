-- Run once by the postgres image on an empty data directory: the basic-auth app's users and permissions get a
-- database of their own beside the tracking store's (POSTGRES_DB, `mlflow`).
CREATE DATABASE mlflow_auth OWNER mlflow;
