"""The chat page in a real browser (Debian's Chromium, driven by Playwright) against a real
gateway and engine: sign in, pick a deployment, streamed replies, a reply in a synthetic voice
like the owner's, where a reply came from and her own recording of telling it (for her
family's token only). CHAT_SCREENSHOT=path writes a screenshot of the page mid-conversation
(docs/chat-page.png)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.db import users
from clone_pipeline.db.models import VoiceProfile
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.statuses import VoiceProfileStatus
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.files import relative_to_root, user_folder, write_json
from clone_pipeline.services import deployments, tokens
from clone_pipeline.services.datasets import collect_user_data
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.memory import build_memory
from clone_pipeline.voice.analysis import Recording, analyse_recordings

pytestmark = pytest.mark.slow

REPLY_WAIT_MS = 120_000  # a reply from vLLM on two CPU cores
ASSISTANT = ".message[data-role=assistant]"
SYNTHETIC = "Play this reply in a synthetic voice modelled on {}'s"


@pytest.fixture(scope="module")
def browser():
    """Chromium, checked for first: a machine without it skips before the engine starts.
    Module-scoped: Playwright's sync API holds an event loop on this thread until it stops,
    and later tests run their own (asyncio.run)."""
    executable = shutil.which("chromium")
    if executable is None or importlib.util.find_spec("playwright") is None:
        reason = ("the chat page test needs Debian's Chromium (apt-get install -y chromium; "
                  "make test installs it) and playwright (pip install -e '.[dev]')")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable,
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def chat(browser, serving_root, engine, gateway_factory):
    """A gateway with one user's model deployed, that user's token, and a fresh page."""
    settings = serving_root.settings
    owner = serving_root.users[0]
    deployment = deployments.deploy_model(settings, engine, owner)
    token, _ = tokens.create_token(settings, owner)
    url = gateway_factory(settings)
    context = browser.new_context(viewport={"width": 900, "height": 860})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{url}/chat")
    yield settings, owner, deployment, token, page
    context.close()


def _arctic_profile(settings, external_id: str) -> None:
    """A ready voice profile analysed from a real human recording (CMU ARCTIC a0007, which
    pysptk ships), stored the way build_voice_profile stores one."""
    recording = (Path(importlib.util.find_spec("pysptk").origin).parent
                 / "example_audio_data" / "arctic_a0007.wav")
    analysis = analyse_recordings([Recording(
        "arctic", "a0007", "and you always want to see it in the superlative degree",
        recording)], embed=False)
    assert analysis.usable, analysis.warnings
    artefact = write_json(user_folder(settings, "voice", external_id) / "profile-arctic.json",
                          analysis.to_json())
    with session_scope(settings.database_url) as session:
        session.add(VoiceProfile(
            user_id=users.user_id_of(session, external_id), status=VoiceProfileStatus.READY,
            profile={**analysis.profile.to_dict(), "warnings": analysis.warnings,
                     "artefact": relative_to_root(settings, artefact)}))


def _sign_in(page, token: str) -> None:
    page.get_by_label("API token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()


def _send(page, text: str):
    """Send *text*; the new reply once it is complete, and how many times its text changed."""
    page.evaluate("""() => {
        window.replyUpdates = 0;
        window.replyWatch && window.replyWatch.disconnect();
        window.replyWatch = new MutationObserver((changes) => {
            for (const c of changes) if (c.target.closest && c.target.closest(
                ".message[data-role=assistant] .text")) window.replyUpdates++;
        });
        window.replyWatch.observe(document.getElementById("conversation"),
                                  {subtree: true, childList: true, characterData: true});
    }""")
    before = page.locator(ASSISTANT).count()
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")
    reply = page.locator(ASSISTANT).nth(before)
    reply.and_(page.locator("[data-state=done]")).wait_for(timeout=REPLY_WAIT_MS)
    return reply, page.evaluate("window.replyUpdates")


def test_signed_in_user_chats_with_streamed_replies_and_hears_them_in_the_owners_voice(chat):
    settings, owner, deployment, token, page = chat
    page.get_by_label("Max reply tokens", exact=True).fill("16")
    _sign_in(page, token)
    model = page.get_by_label("Deployment", exact=True)
    page.locator("#model option").first.wait_for(state="attached")
    assert page.locator("#model option").all_inner_texts() == [
        f"Person 0 ({deployment.name}, version 1)"]  # the person by name, then the model
    assert "model trained on Person 0's own words" in page.locator("#notice").inner_text()
    assert model.input_value() == deployment.name
    assert token not in page.url
    assert page.evaluate("Object.values(sessionStorage)") == [token]

    first, updates = _send(page, "Hello! How are you today?")
    answer = first.locator(".text").inner_text()
    assert answer.strip()
    assert updates > 1, "the reply appeared in one piece, not streamed"
    assert page.locator("#error").inner_text() == ""

    # No voice profile yet: the play button says so and nothing plays.
    play = first.get_by_role("button", name=SYNTHETIC.format("Person 0"))
    assert play.inner_text() == "Play in their voice (synthetic)"
    play.click()
    problem = first.locator(".voice-error")
    problem.and_(page.locator(":not(:empty)")).wait_for()
    assert "No voice to play" in problem.inner_text()
    assert first.locator("audio").get_attribute("src") is None

    # The conversation so far goes with the next message.
    with page.expect_request("**/v1/chat/completions") as sent:
        second, _ = _send(page, "What did you do this morning?")
    history = json.loads(sent.value.post_data)["messages"]
    assert history == [{"role": "user", "content": "Hello! How are you today?"},
                       {"role": "assistant", "content": answer},
                       {"role": "user", "content": "What did you do this morning?"}]

    _arctic_profile(settings, owner)
    second.get_by_role("button", name=SYNTHETIC.format("Person 0")).click()
    page.wait_for_function("""(index) => {
        const audio = document.querySelectorAll(".message[data-role=assistant] audio")[index];
        return audio.src.startsWith("blob:") && audio.duration > 0;
    }""", arg=1, timeout=60_000)
    size = page.evaluate("""async () => {
        const audio = document.querySelectorAll(".message[data-role=assistant] audio")[1];
        const wav = new Uint8Array(await (await fetch(audio.src)).arrayBuffer());
        return [wav.length, String.fromCharCode(...wav.slice(0, 4))];
    }""")
    assert size[0] > 44 and size[1] == "RIFF"  # more than a WAV header
    assert second.locator(".voice-error").inner_text() == ""

    if os.environ.get("CHAT_SCREENSHOT"):
        page.get_by_label("Message", exact=True).fill("Tell me about the garden.")
        page.screenshot(path=os.environ["CHAT_SCREENSHOT"], full_page=True)


def test_wrong_token_shows_the_error_and_lists_nothing(chat):
    _settings, _owner, _deployment, token, page = chat
    _sign_in(page, token + "-wrong")
    error = page.locator("#error")
    error.and_(page.locator(":not(:empty)")).wait_for()
    assert "token" in error.inner_text()
    assert page.locator("#model option").count() == 0
    assert page.get_by_label("Message", exact=True).is_disabled()
    assert page.get_by_label("API token", exact=True).is_visible()  # still signed out
    assert page.evaluate("sessionStorage.length") == 0


def _remembers_telling_it(settings, owner: str, write_export) -> dict:
    """*owner* becomes Margaret Ellis with one answer she also recorded aloud (the demo's
    v-005), collected and indexed the way the pipeline does it; returns that answer."""
    demo = json.loads((PERSONAS_DIR / "margaret-ellis" / "export.json").read_text())
    answer = next(r for r in demo["responses"] if r["id"] == "r-004")
    told = next(v for v in demo["voice_recordings"] if v["id"] == "v-005")
    export = write_export({"format": "clone-pipeline/user-export", "version": 1,
                           "user": {"external_id": owner, "display_name": "Margaret Ellis"},
                           "responses": [answer], "voice_recordings": [told]},
                          audio_from="margaret-ellis")
    import_export(export, settings)
    collect_user_data(settings, owner, CollectOptions())
    assert build_memory(settings, owner).recorded == 1
    return answer


def test_a_reply_says_where_it_came_from_and_plays_her_own_telling_to_her_family_only(
        chat, serving_root, write_export):
    settings, owner, deployment, token, page = chat
    answer = _remembers_telling_it(settings, owner, write_export)
    page.get_by_label("Max reply tokens", exact=True).fill("8")
    _sign_in(page, token)
    page.locator("#model option").first.wait_for(state="attached")
    notice = page.locator("#notice").inner_text()
    assert "model trained on Margaret Ellis's own words, not by Margaret Ellis" in notice

    reply, _ = _send(page, "Who was your best friend when you were growing up?")
    assert reply.locator(".who").text_content() == "Margaret Ellis (model)"
    source = reply.locator(".sources .source").first
    assert source.locator("span").first.inner_text() == \
        f"Margaret Ellis's answer to \u201c{answer['question']}\u201d"

    with page.expect_response("**/v1/recordings/v-005/audio*") as fetched:
        source.get_by_role("button", name="Hear Margaret Ellis tell it").click()
    assert fetched.value.status == 200
    assert fetched.value.headers["content-type"].startswith("audio/")
    page.wait_for_function("""() => {
        const audio = document.querySelector(".message .sources audio");
        return audio.src.startsWith("blob:") && audio.duration > 5;
    }""", timeout=30_000)  # her 10.6 s recording, not a synthetic reading of the reply
    assert reply.locator(".recording-error").inner_text() == ""
    synthetic = reply.get_by_role("button", name=SYNTHETIC.format("Margaret Ellis"))
    assert synthetic.inner_text() == "Play in their voice (synthetic)"  # still offered

    # Another family's token, from the same page: the recording does not exist for them.
    other = tokens.create_token(settings, serving_root.users[1])[0]
    status = page.evaluate("""async (other) => (await fetch("/v1/recordings/v-005/audio",
        {headers: {Authorization: "Bearer " + other}})).status""", other)
    assert status == 404
