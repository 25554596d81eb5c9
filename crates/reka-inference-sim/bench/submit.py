#!/usr/bin/env python3
"""Submit N jobs to a running simulator over one keep-alive connection and
write their request ids, one per line. Standard library only.

usage: submit.py BASE_URL N IDS_FILE [API_KEY]
"""
import http.client
import json
import sys
from urllib.parse import urlparse

base, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
key = sys.argv[4] if len(sys.argv) > 4 else "sim-dev-key"
u = urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port)
endpoints = ["kling-v3-pro/image-to-video", "veo-3.1/text-to-video", "sora-2-pro/image-to-video"]
with open(out, "w") as f:
    for i in range(n):
        # Two of the three endpoints take an image: an https URL (never fetched).
        body = json.dumps({"input": {"prompt": f"bench job {i}",
                                     "image_url": "https://images.example.com/bench.png"}})
        conn.request("POST", f"/v2/inference/{endpoints[i % 3]}", body,
                     {"X-Api-Key": key, "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 202:
            sys.exit(f"submit {i}: HTTP {resp.status}: {data[:200]!r}")
        f.write(json.loads(data)["request_id"] + "\n")
