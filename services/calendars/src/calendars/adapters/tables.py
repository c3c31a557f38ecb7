"""The calendars service's own tables (its database alone holds them)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
