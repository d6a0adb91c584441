"""The bench's timed child: ``python -m a11y_caption.bench SPEC`` measures one run in a fresh
process and prints its rows as JSON lines."""

import json
import sys

from .children import child

for result in child(json.loads(sys.argv[1])):
    print(json.dumps(result.as_json()), flush=True)
