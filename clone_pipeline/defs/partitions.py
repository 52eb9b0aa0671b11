"""One user = one partition; the key is the export's external_id."""

import dagster as dg

users = dg.DynamicPartitionsDefinition(name="users")
