"""Starting and following Dagster runs, the one way everything does it: set up the instance,
launch a job for a user (queued through the webserver, or executed in this process), read a
run back as one `Run` with one status vocabulary, follow a training's progress, apply the
admin queues and the GPU pool, and remove a user's partition. Below the definitions: it
addresses jobs, the partition set and the pool by the names in `names`, never imports them."""
