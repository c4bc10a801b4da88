#!/usr/bin/env python3
"""The baseline of identifiers_bench: normalize and hash rows the way a typical integration does.

The rules are the naive ones: trim and lowercase text, keep only the digits of a phone number,
SHA-256 each non-empty value with hashlib and take the hex digest. No Unicode normalization, no
phone parsing, no validation.

Usage: naive_hash.py ROWS.csv [REPEAT]

ROWS.csv has the header email,phone1,phone2,first_name,last_name,city,country. The script times
each column on its own, then whole rows, over REPEAT passes (default 1), in process CPU time,
and prints one JSON object: {"rows": N, "fields": {name: rows_per_second}, "row": rows_per_second}.
"""

import csv
import hashlib
import json
import sys
import time


def text(value):
    return value.strip().lower()


def digits(value):
    return "".join(c for c in value if c.isdigit())


RULES = {
    "email": text,
    "phone1": digits,
    "phone2": digits,
    "first_name": text,
    "last_name": text,
    "city": text,
    "country": text,
}


def hash_column(values, rule):
    sha256 = hashlib.sha256
    for value in values:
        normalized = rule(value)
        if normalized:
            sha256(normalized.encode("utf-8")).hexdigest()


def hash_rows(rows, rules):
    sha256 = hashlib.sha256
    for row in rows:
        for value, rule in zip(row, rules):
            normalized = rule(value)
            if normalized:
                sha256(normalized.encode("utf-8")).hexdigest()


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: naive_hash.py ROWS.csv [REPEAT]")
    repeat = int(sys.argv[2]) if len(sys.argv) == 3 else 1
    with open(sys.argv[1], newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for row in reader if len(row) == len(header)]

    fields = {}
    for index, name in enumerate(header):
        column = [row[index] for row in rows]
        start = time.process_time()
        for _ in range(repeat):
            hash_column(column, RULES[name])
        fields[name] = len(rows) * repeat / (time.process_time() - start)

    rules = [RULES[name] for name in header]
    start = time.process_time()
    for _ in range(repeat):
        hash_rows(rows, rules)
    row_rate = len(rows) * repeat / (time.process_time() - start)

    print(json.dumps({"rows": len(rows), "fields": fields, "row": row_rate}))


if __name__ == "__main__":
    main()
