"""The official `openai` package against an OpenAI-compatible server.

Usage: python openai_client.py BASE_URL API_KEY MODEL

Runs a whole answer, a stream with usage, a tool call (whole and
streamed), an image part and response_format json_object; any error or
unexpected shape fails (exit 1).
"""

import base64
import json
import sys

import openai


def main() -> None:
    base_url, api_key, model = sys.argv[1:4]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)

    whole = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}]
    )
    assert whole.choices[0].message.content, whole
    assert whole.usage and whole.usage.total_tokens > 0, whole
    print("whole:", whole.choices[0].message.content)

    text, usage, chunks = "", None, 0
    for chunk in client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Stream, please."}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        chunks += 1
        for choice in chunk.choices:
            text += choice.delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text and usage and usage.total_tokens > 0, (text, usage)
    print(f"streamed: {chunks} chunks, {usage.total_tokens} tokens: {text}")

    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]},
        },
    }]
    ask = [{"role": "user", "content": "Use get_weather for Oslo."}]
    called = client.chat.completions.create(model=model, messages=ask, tools=tools)
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    args = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and "city" in args, call
    print(f"tool call: {call.function.name}({call.function.arguments})")

    pieces, name = "", None
    for chunk in client.chat.completions.create(
        model=model, messages=ask, tools=tools, stream=True
    ):
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                name = tc.function.name or name
                pieces += tc.function.arguments or ""
    assert name == "get_weather" and json.loads(pieces) == args, (name, pieces)
    print(f"streamed tool call: {name}({pieces})")

    followed = client.chat.completions.create(
        model=model,
        messages=ask + [choice.message.model_dump(exclude_none=True),
                        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}],
        tools=tools,
    )
    assert followed.choices[0].message.content, followed
    print("after the tool:", followed.choices[0].message.content)

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    seen = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        ]}],
    )
    assert seen.choices[0].message.content, seen
    print("image:", seen.choices[0].message.content)

    as_json = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Answer in JSON."}],
        response_format={"type": "json_object"},
    )
    parsed = json.loads(as_json.choices[0].message.content)
    assert isinstance(parsed, dict), parsed
    print("json_object:", parsed)

    cut = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Talk a lot."}], max_tokens=3, n=2
    )
    assert len(cut.choices) == 2 and cut.choices[0].finish_reason == "length", cut
    print("max_tokens=3, n=2:", [c.message.content for c in cut.choices])
    print(f"interop: all passed (openai {openai.__version__})")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # any failure, including assertion errors
        print(f"interop: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
