#!/usr/bin/env python3
"""Lists Swift functions and initializers longer than a limit (lines from the declaration to its
closing brace), so scripts/lint.sh can hold the house rule: no function in Sources/MegatronCore
over ~80 lines. Usage: function_lengths.py LIMIT FILE..."""
import re
import sys

DECL = re.compile(r'^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|private|fileprivate|internal|static|final|override|mutating|nonmutating|convenience|required|@discardableResult)\s+)*(func\s+[^\s(<]+|init[?!]?|deinit)\b')


def long_functions(path, limit):
    lines = open(path, encoding='utf-8').read().split('\n')
    found = []
    i = 0
    while i < len(lines):
        m = DECL.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            code = re.sub(r'"(?:\\.|[^"\\])*"', '""', lines[j].split('//')[0])
            depth += code.count('{') - code.count('}')
            started = started or '{' in code
            if started and depth <= 0:
                break
            j += 1
        length = j - i + 1
        if started and length > limit:
            found.append((path, i + 1, m.group(1), length))
        i += 1
    return found


if __name__ == '__main__':
    limit = int(sys.argv[1])
    bad = [f for p in sys.argv[2:] for f in long_functions(p, limit)]
    for path, line, name, length in bad:
        print(f'{path}:{line}: {name} is {length} lines (limit {limit})')
    sys.exit(1 if bad else 0)
