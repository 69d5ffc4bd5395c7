"""The entry-check tests' name for the fake Prolific API (:mod:`tests.support.fake_prolific`):
``submissions`` maps a session id to its ``participant_id`` / ``study_id``, unknown ids are 404, a
wrong token is 401, ``down=True`` answers 503, and ``requests`` keeps ``(path, authorization)``."""

from tests.support.fake_prolific import FakeProlific as FakeProlificServer

__all__ = ["FakeProlificServer"]
