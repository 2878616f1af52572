#!/usr/bin/env python3
"""Where a .wasm's code goes: function body sizes summed by crate, from the name section.

    python3 wasm/size-by-crate.py FILE.wasm [CRATES] [TOP_FUNCTIONS]

FILE needs its names: e.g. `wasm-bindgen --keep-debug --out-dir D target/.../hublink_wasm.wasm`
then `wasm-opt -Oz -g D/hublink_wasm_bg.wasm -o D/opt.wasm` (the package's flags plus -g).
"<x" rows are trait impls on x's types; "(other)" names that are not Rust symbols.
"""
import sys, re, collections

def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i

def parse(path):
    b = open(path, 'rb').read()
    i = 8; sections = []; nimports = 0; bodies = []; names = {}
    while i < len(b):
        sid = b[i]; i += 1
        size, i = leb(b, i); start = i; end = i + size
        if sid == 0:
            nl, j = leb(b, i); nm = b[j:j+nl].decode(); j += nl
            sections.append(('custom:' + nm, size))
            if nm == 'name':
                while j < end:
                    sub = b[j]; j += 1; ssz, j = leb(b, j); send = j + ssz
                    if sub == 1:
                        cnt, k = leb(b, j)
                        for _ in range(cnt):
                            idx, k = leb(b, k); l, k = leb(b, k); names[idx] = b[k:k+l].decode('utf8', 'replace'); k += l
                    j = send
        else:
            sections.append((sid, size))
            if sid == 2:
                cnt, j = leb(b, i)
                for _ in range(cnt):
                    l, j = leb(b, j); j += l; l, j = leb(b, j); j += l
                    kind = b[j]; j += 1
                    if kind == 0: _, j = leb(b, j); nimports += 1
                    elif kind == 1: j += 1; fl, j = leb(b, j); _, j = leb(b, j); j = leb(b, j)[1] if fl & 1 else j
                    elif kind == 2: fl, j = leb(b, j); _, j = leb(b, j); j = leb(b, j)[1] if fl & 1 else j
                    elif kind == 3: j += 2
                    elif kind == 4: j += 1; _, j = leb(b, j)
            if sid == 10:
                cnt, j = leb(b, i)
                for _ in range(cnt):
                    l, j = leb(b, j); bodies.append(l); j += l
        i = end
    return sections, nimports, bodies, names

def crate_of(name):
    if name.startswith('_R'):
        m = re.search(r'C(?:s[0-9A-Za-z]*_)?(\d+)', name)
        if m:
            n=int(m.group(1)); st=m.end(); return name[st:st+n]
    m = re.match(r'_ZN(\d+)(.*)', name)
    if not m:
        return name.split('::')[0] if '::' in name else '(other)'
    n = int(m.group(1)); first = m.group(2)[:n]
    if first.startswith('_$LT$'):
        inner = re.search(r'_\$LT\$([A-Za-z0-9_]+)', first)
        # <T as Trait>: attribute to T's crate
        return '<' + (inner.group(1).split('..')[0] if inner else '?')
    return first

sections, nimports, bodies, names = parse(sys.argv[1])
print('sections:', [(s, n) for s, n in sections])
by = collections.Counter(); tops = []
for k, size in enumerate(bodies):
    nm = names.get(nimports + k, '?')
    by[crate_of(nm)] += size; tops.append((size, nm))
total = sum(bodies)
print(f'code total {total}, functions {len(bodies)}')
for c, s in by.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 40):
    print(f'{s:8d} {100*s/total:5.1f}%  {c}')
if len(sys.argv) > 3:
    for s, nm in sorted(tops, reverse=True)[:int(sys.argv[3])]:
        print(f'{s:8d}  {nm[:160]}')
