"""The script our users write today (see the seed articles): a ThreadPoolExecutor
of N workers, each calling requests.post(url, files={'image': f}) per file.
Usage: python3 threadpool.py DIR URL WORKERS"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import requests


def send(path, url):
    with open(path, 'rb') as handle:
        return requests.post(url, files={'image': handle}).status_code


def main():
    folder, url, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if name.endswith('.jpg')]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        statuses = list(pool.map(lambda path: send(path, url), paths))
    failed = sum(1 for status in statuses if status != 200)
    if failed:
        sys.exit(f'{failed} uploads failed')


main()
