"""The official MCP Python SDK (`mcp`) against `reka-inference --sim mcp`.

Usage: python mcp_client.py BINARY

Runs one scenario over stdio (the SDK launches the binary) and then over
Streamable HTTP (the binary serves `--http 127.0.0.1:0` with a bearer
token), each with the newest protocol and with the legacy handshake: list the tools, generate an image, a video that outlasts its
`wait_seconds` finished with `wait_for_job` (with progress notifications),
a local file sent from an allowed directory and one refused outside it.
Any error or unexpected shape fails (exit 1).
"""

import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

TOOLS = [
    "cancel_job",
    "generate",
    "job_result",
    "job_status",
    "list_jobs",
    "list_models",
    "submit_job",
    "wait_for_job",
]

# A real 1x1 PNG: the simulator checks images by their bytes.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000a49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


async def scenario(client: Client, dirs: dict, label: str) -> None:
    tools = await client.list_tools()
    names = sorted(t.name for t in tools.tools)
    assert names == TOOLS, names
    for tool in tools.tools:
        assert tool.input_schema.get("type") == "object", tool
        paid = tool.name in ("generate", "submit_job")
        assert ("COSTS MONEY" in (tool.description or "")) == paid, tool
    assert client.server_info and client.server_info.name == "reka-inference-mcp", client.server_info
    print(f"{label}: {len(names)} tools, protocol {client.protocol_version}")

    models = await client.call_tool("list_models", {})
    assert not models.is_error, models
    endpoints = [e["endpoint"] for e in models.structured_content["endpoints"]]
    assert "nano-banana/text-to-image" in endpoints, endpoints

    image = await client.call_tool(
        "generate",
        {"endpoint": "nano-banana/text-to-image", "input": {"prompt": "a lighthouse at dusk"}},
    )
    assert not image.is_error, text_of(image)
    done = image.structured_content
    assert done["status"] == "COMPLETED", done
    path = done["outputs"][0]["path"]
    assert os.path.isabs(path) and os.path.isfile(path), path
    assert path.startswith(dirs["out"]), path
    kinds = {c.type for c in image.content}
    assert {"text", "image", "resource_link"} <= kinds, kinds
    print(f"{label}: image saved at {path}")

    video = await client.call_tool(
        "generate",
        {"endpoint": "veo-3.1/text-to-video", "input": {"prompt": "surf at dawn"}, "wait_seconds": 0.2},
    )
    assert not video.is_error, text_of(video)
    pending = video.structured_content
    assert pending["done"] is False, pending
    request_id = pending["request_id"]
    assert "wait_for_job" in text_of(video), text_of(video)

    notes = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append((progress, message))

    finished = await client.call_tool(
        "wait_for_job",
        {"request_id": request_id, "wait_seconds": 120},
        progress_callback=on_progress,
    )
    assert not finished.is_error, text_of(finished)
    assert finished.structured_content["status"] == "COMPLETED", finished.structured_content
    assert finished.structured_content["request_id"] == request_id
    assert notes and notes[0][1].startswith("waiting for job"), notes
    assert all(b[0] > a[0] for a, b in zip(notes, notes[1:])), notes
    print(f"{label}: video {request_id} finished with wait_for_job after {len(notes)} progress notes")

    edited = await client.call_tool(
        "generate",
        {"endpoint": "nano-banana/edit", "input": {"prompt": "make it snow", "image_url": dirs["photo"]}},
    )
    assert not edited.is_error, text_of(edited)
    assert edited.structured_content["input_files"][0]["media_type"] == "image/png"

    refused = await client.call_tool(
        "generate",
        {"endpoint": "nano-banana/edit", "input": {"prompt": "x", "image_url": "file://" + dirs["secret"]}},
    )
    assert refused.is_error, refused
    assert "outside the allowed directories" in text_of(refused), text_of(refused)
    print(f"{label}: a file outside --allow-dir refused")


def server_args(dirs: dict) -> list:
    return ["--sim", "mcp", "--output-dir", dirs["out"], "--allow-dir", dirs["allowed"]]


async def over_stdio(binary: str, dirs: dict, mode: str) -> None:
    params = StdioServerParameters(
        command=binary,
        args=server_args(dirs),
        env={"PATH": os.environ.get("PATH", "")},
    )
    async with Client(params, mode=mode) as client:
        await scenario(client, dirs, f"stdio ({mode})")


async def over_http(binary: str, dirs: dict, mode: str) -> None:
    token = secrets.token_urlsafe(24)
    env = {"PATH": os.environ.get("PATH", ""), "REKA_MCP_AUTH_TOKEN": token}
    process = subprocess.Popen(
        [binary, *server_args(dirs), "--http", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        url = None
        for line in process.stderr:
            found = re.search(r"(http://127\.0\.0\.1:\d+/mcp)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the server printed no URL"
        assert token not in url
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            await scenario(client, dirs, f"http ({mode})")
        # Without the token: refused.
        try:
            async with Client(streamable_http_client(url), mode=mode) as client:
                await client.list_tools()
        except Exception as refused:  # noqa: BLE001 - any failure to connect is the point
            print(f"http ({mode}): refused without the token ({type(refused).__name__})")
        else:
            raise AssertionError("the server answered without the token")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as root:
        dirs = {
            "out": os.path.join(root, "out"),
            "allowed": os.path.join(root, "allowed"),
            "photo": os.path.join(root, "allowed", "photo.png"),
            "secret": os.path.join(root, "outside", "secret.png"),
        }
        os.makedirs(dirs["allowed"])
        os.makedirs(os.path.dirname(dirs["secret"]))
        for path in (dirs["photo"], dirs["secret"]):
            with open(path, "wb") as f:
                f.write(PNG)
        # "auto" negotiates the newest protocol (server/discover); "legacy"
        # the initialize handshake that most hosts still use.
        for mode in ("auto", "legacy"):
            asyncio.run(over_stdio(binary, dirs, mode))
            asyncio.run(over_http(binary, dirs, mode))
    print("mcp interop: ok")


if __name__ == "__main__":
    main()
