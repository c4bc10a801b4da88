#!/usr/bin/env python3
"""Talks to the platform test server for scripts/main-job.sh.

  main_job_server.py configure PORT CONFIG   points CONFIG's test-server destinations at PORT and
                                             creates the Data Manager destination's list
  main_job_server.py report PORT             prints the count each emulated platform holds, and
                                             why it differs from the audience's row count

The server runs on 127.0.0.1 only; requests never go through a proxy.
"""
import json
import sys
import urllib.request

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The port that examples/activation.json names for the test server.
EXAMPLE_ADDRESS = "127.0.0.1:8765"


def call(port, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json"},
                                     method="GET" if body is None else "POST")
    with OPENER.open(request, timeout=30) as response:
        return json.load(response)


def configure(port, config_path):
    with open(config_path, encoding="utf-8") as f:
        config = json.loads(f.read().replace(EXAMPLE_ADDRESS, f"127.0.0.1:{port}"))
    created = call(port, "/__inspect/google/user_lists",
                   {"customer_id": "1234567890", "name": "activation sample (Data Manager)"})
    config["destinations"]["google_test_server"]["settings"]["user_list_id"] = created["id"]
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


# The reason each platform's count differs from the audience's row count, taken from how the test
# server stores what it receives (examples/platform_server/) and what each adapter sends
# (docs/platforms/). Every platform also lacks the rows without an identifier it accepts, because
# those are invalid and never sent ("invalid" in `activate status JOB`).
WHY = {
    "meta": "counts rows, not members: a member with two phones is sent as two rows, and a "
            "request holds 10,000 rows at most, so a batch takes two or more requests",
    "google": "merges members who share an identifier (an email or a phone) into one",
    "google_ads": "merges members who share an identifier, as above",
    "linkedin": "counts members: one element per member, keyed by its hashed identifiers, or by "
                "name and country when it has none; elements with the same key are one member",
    "tiktok": "counts rows, not members: a member with two phones is sent as two rows",
    "snapchat": "counts identifiers, not members: each distinct email, phone and MAID once",
    "webhook": "counts members: one operation per member, keyed by its member key",
}


def plural(count, noun):
    """Return "1 upload" or "2 uploads": the count with its noun."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def report(port):
    lines = []
    for audience in call(port, "/__inspect/meta/audiences")["audiences"]:
        lines.append(("meta", audience["name"], audience["member_count"],
                      f"rows; {plural(audience['batches'], 'upload request')}"))
    for audience in call(port, "/__inspect/google/audiences")["audiences"]:
        # Only the Ads API uploads through offline user data jobs.
        platform = "google_ads" if audience.get("jobs") else "google"
        lines.append((platform, audience["name"], audience["size"],
                      f"members; {plural(audience['uploads'], 'upload')}, {audience['removed']:,} removed"))
    for platform in ("linkedin", "tiktok", "snapchat"):
        for audience in call(port, f"/__inspect/{platform}/audiences")["audiences"]:
            count = audience.get("member_count", audience.get("identifier_count", "?"))
            unit = {"snapchat": "identifiers", "tiktok": "rows"}.get(platform, "members")
            if platform == "linkedin":
                counters = call(port, f"/__inspect/linkedin/audiences/{audience['id']}?members=0")["counters"]
                unit += (f"; {counters['adds']:,} elements added, {counters['duplicate_adds']:,} of them "
                         "to a member already there")
            lines.append((platform, audience.get("name", audience.get("id")), count, unit))
    for receiver in call(port, "/__inspect/webhook/audiences")["audiences"]:
        lines.append(("webhook", receiver["name"], receiver["member_count"], "members"))
    for platform, name, count, detail in lines:
        print(f"  {platform:<10} {name!r:<36} {count:>9,}  ({detail})")
    print("  Why these differ from the audience's rows (rows without an identifier a platform")
    print("  accepts are invalid and never sent; 'activate status JOB' counts them):")
    for platform in dict.fromkeys(line[0] for line in lines):
        print(f"    {platform:<10} {WHY[platform]}")


def main(argv):
    if len(argv) == 4 and argv[1] == "configure":
        configure(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "report":
        report(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
