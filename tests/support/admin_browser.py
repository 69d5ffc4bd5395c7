"""A Chromium page logged in to the admin as a new superuser (browser tests of staff pages)."""

from __future__ import annotations

from typing import Any


def admin_page(browser: Any, base_url: str, user_model: Any, *, width: int = 1400, height: int = 900) -> Any:
    """Create the superuser ``lab``, log in through the admin's form, return the page."""
    user_model.objects.create_superuser("lab", "lab@example.org", "pw-for-the-browser")
    page = browser.new_context(viewport={"width": width, "height": height}, base_url=base_url).new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("lab")
    page.get_by_label("Password").fill("pw-for-the-browser")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    return page
