"""What an import could change: the stored rows and the data root's files and folders."""

from sqlalchemy import select

from clone_pipeline.db.models import LifeStory, Response, User, VoiceRecording
from clone_pipeline.db.session import session_scope


def snapshot(settings) -> dict:
    """Every stored row an import writes, and every path under the data root (the SQLite
    file itself aside), so a failed import can be shown to have left no trace."""
    with session_scope(settings.database_url) as s:
        rows = {
            "users": sorted((u.external_id, u.display_name, u.updated_at.isoformat())
                            for u in s.scalars(select(User))),
            "responses": sorted((r.item_id, r.answer, r.updated_at.isoformat())
                                for r in s.scalars(select(Response))),
            "stories": sorted((r.item_id, r.content) for r in s.scalars(select(LifeStory))),
            "recordings": sorted((r.item_id, r.sha256) for r in s.scalars(select(VoiceRecording))),
        }
    paths = sorted(str(p.relative_to(settings.home)) for p in settings.home.rglob("*")
                   if not p.name.startswith("clone.db"))
    return {**rows, "paths": paths}
