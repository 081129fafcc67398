#!/usr/bin/env python3
"""Checks manifests against specs/schemas/*.schema.json with the standard library only.

Usage: schema_check.py --schemas DIR [--modeline] FILE...

Every YAML/JSON document in each FILE is checked against the schema of its kind
(EtcdCluster -> DIR/etcdcluster.schema.json). With --modeline each file must also start
with a "# yaml-language-server: $schema=REL" comment whose REL, taken relative to the
file, names that same schema. Exit 0 when everything is valid, 1 when a document breaks
its schema, 2 on a usage error, a file that cannot be read or parsed, or a schema that
uses a keyword this checker does not implement (so an unchecked rule never passes).

The YAML reader covers what manifests use: block mappings and sequences, one-line flow
collections, plain/single/double-quoted scalars with YAML 1.2 core typing, comments and
multiple documents. Anchors, aliases, tags and block scalars are refused, not guessed.
"""

import json
import os
import re
import sys


class YamlError(Exception):
    def __init__(self, line, message):
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


class SchemaError(Exception):
    pass


# ---- YAML subset -------------------------------------------------------------------

_INT_RE = re.compile(r"^[-+]?[0-9]+$")
_OCT_RE = re.compile(r"^0o[0-7]+$")
_HEX_RE = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _resolve_plain(text):
    """YAML 1.2 core schema resolution of a plain scalar."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT_RE.match(text):
        return int(text, 10)
    if _OCT_RE.match(text):
        return int(text[2:], 8)
    if _HEX_RE.match(text):
        return int(text[2:], 16)
    if _FLOAT_RE.match(text):
        return float(text)
    if text in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"):
        return float("inf")
    if text in ("-.inf", "-.Inf", "-.INF"):
        return float("-inf")
    if text in (".nan", ".NaN", ".NAN"):
        return float("nan")
    return text


_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
            "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
            "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}


def _scan_quoted(text, pos, line):
    """Reads a quoted scalar starting at text[pos]; returns (value, position after it)."""
    quote = text[pos]
    out = []
    i = pos + 1
    while i < len(text):
        c = text[i]
        if quote == "'":
            if c == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                return "".join(out), i + 1
            out.append(c)
            i += 1
            continue
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= len(text):
                break
            e = text[i + 1]
            width = {"x": 2, "u": 4, "U": 8}.get(e)
            if width:
                digits = text[i + 2:i + 2 + width]
                if len(digits) != width or not re.match(r"^[0-9a-fA-F]+$", digits):
                    raise YamlError(line, f"bad escape \\{e}{digits}")
                out.append(chr(int(digits, 16)))
                i += 2 + width
                continue
            if e not in _ESCAPES:
                raise YamlError(line, f"bad escape \\{e}")
            out.append(_ESCAPES[e])
            i += 2
            continue
        out.append(c)
        i += 1
    raise YamlError(line, "unterminated quoted scalar (multi-line scalars are not supported)")


def _strip_comment(text, line):
    """Removes a trailing comment, respecting quotes."""
    i = 0
    while i < len(text):
        c = text[i]
        if c in "\"'" and (i == 0 or text[i - 1] in " \t[{,:-?"):
            _, i = _scan_quoted(text, i, line)
            continue
        if c == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
        i += 1
    return text.rstrip()


def _check_plain_start(text, line):
    if text[:1] in ("&", "*", "!"):
        raise YamlError(line, "anchors, aliases and tags are not supported by this checker")
    if text[:1] in ("|", ">"):
        raise YamlError(line, "block scalars are not supported by this checker")
    if text[:1] in ("@", "`"):
        raise YamlError(line, f"a plain scalar cannot start with '{text[0]}'")


class _Flow:
    """One-line flow collections: [a, b], {k: v}."""

    def __init__(self, text, line):
        self.text = text
        self.pos = 0
        self.line = line

    def _ws(self):
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def _peek(self):
        self._ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _expect(self, c):
        if self._peek() != c:
            raise YamlError(self.line, f"expected '{c}' in flow collection")
        self.pos += 1

    def parse_all(self):
        v = self.value(in_key=False)
        if self._peek():
            raise YamlError(self.line, "unexpected text after flow collection")
        return v

    def value(self, in_key):
        c = self._peek()
        if c == "[":
            self.pos += 1
            out = []
            if self._peek() == "]":
                self.pos += 1
                return out
            while True:
                out.append(self.value(in_key=False))
                c = self._peek()
                if c == ",":
                    self.pos += 1
                    if self._peek() == "]":
                        self.pos += 1
                        return out
                    continue
                self._expect("]")
                return out
        if c == "{":
            self.pos += 1
            out = {}
            if self._peek() == "}":
                self.pos += 1
                return out
            while True:
                k = self.value(in_key=True)
                if not isinstance(k, str):
                    raise YamlError(self.line, "only string keys are supported")
                if self._peek() == ":":
                    self.pos += 1
                    v = self.value(in_key=False)
                else:
                    v = None
                if k in out:
                    raise YamlError(self.line, f"duplicate key '{k}'")
                out[k] = v
                c = self._peek()
                if c == ",":
                    self.pos += 1
                    if self._peek() == "}":
                        self.pos += 1
                        return out
                    continue
                self._expect("}")
                return out
        if c in ("'", '"'):
            v, self.pos = _scan_quoted(self.text, self.pos, self.line)
            return v
        start = self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in ",]}":
                break
            if ch == ":" and (self.pos + 1 >= len(self.text) or self.text[self.pos + 1] in " ,]}"):
                break
            if ch in "[{":
                raise YamlError(self.line, f"unexpected '{ch}' in flow scalar")
            self.pos += 1
        raw = self.text[start:self.pos].strip()
        _check_plain_start(raw, self.line)
        return raw if in_key else _resolve_plain(raw)


def _inline_value(text, line):
    if text[:1] in ("[", "{"):
        return _Flow(text, line).parse_all()
    if text[:1] in ("'", '"'):
        v, end = _scan_quoted(text, 0, line)
        if text[end:].strip():
            raise YamlError(line, "unexpected text after quoted scalar")
        return v
    _check_plain_start(text, line)
    if text.startswith("- ") or text == "-":
        raise YamlError(line, "a block sequence cannot start here")
    if ": " in text or text.endswith(":"):
        raise YamlError(line, "mapping values are not allowed here")
    return _resolve_plain(text)


def _split_key(text, line):
    """Returns (key, rest) when text is 'key: rest' or 'key:', else None."""
    if text[:1] in ("'", '"'):
        key, end = _scan_quoted(text, 0, line)
        rest = text[end:]
        if rest.startswith(":") and (len(rest) == 1 or rest[1] in " \t"):
            return key, rest[1:].strip()
        return None
    if text[:1] in ("[", "{", "?"):
        return None
    for i, c in enumerate(text):
        if c == ":" and (i + 1 == len(text) or text[i + 1] in " \t"):
            key = text[:i].rstrip()
            _check_plain_start(key, line)
            return key, text[i + 1:].strip()
    return None


class _Block:
    def __init__(self, lines):
        self.lines = lines  # [(lineno, indent, text)]
        self.i = 0

    def _cur(self):
        return self.lines[self.i] if self.i < len(self.lines) else None

    def node(self, indent):
        cur = self._cur()
        if cur is None or cur[1] < indent:
            return None
        lineno, ind, text = cur
        if text == "-" or text.startswith("- "):
            return self.sequence(ind)
        if _split_key(text, lineno) is not None:
            return self.mapping(ind)
        self.i += 1
        return _inline_value(text, lineno)

    def _value_after(self, parent_indent, lineno, rest, seq_at_same_indent):
        if rest:
            return _inline_value(rest, lineno)
        nxt = self._cur()
        if nxt is None:
            return None
        if nxt[1] > parent_indent:
            return self.node(nxt[1])
        if seq_at_same_indent and nxt[1] == parent_indent and (nxt[2] == "-" or nxt[2].startswith("- ")):
            return self.sequence(parent_indent)
        return None

    def mapping(self, indent):
        out = {}
        while True:
            cur = self._cur()
            if cur is None or cur[1] < indent:
                return out
            lineno, ind, text = cur
            if ind > indent:
                raise YamlError(lineno, "bad indentation")
            if text == "-" or text.startswith("- "):
                return out
            kv = _split_key(text, lineno)
            if kv is None:
                raise YamlError(lineno, "expected 'key: value'")
            key, rest = kv
            if key in out:
                raise YamlError(lineno, f"duplicate key '{key}'")
            self.i += 1
            out[key] = self._value_after(indent, lineno, rest, seq_at_same_indent=True)

    def sequence(self, indent):
        out = []
        while True:
            cur = self._cur()
            if cur is None or cur[1] != indent or not (cur[2] == "-" or cur[2].startswith("- ")):
                if cur is not None and cur[1] > indent:
                    raise YamlError(cur[0], "bad indentation")
                return out
            lineno, ind, text = cur
            item = text[1:].lstrip(" ")
            if not item:
                self.i += 1
                out.append(self._value_after(indent, lineno, "", seq_at_same_indent=False))
                continue
            # "- key: v" or "- - x": the item is a block node at the item's column.
            col = ind + (len(text) - len(item))
            if item == "-" or item.startswith("- ") or _split_key(item, lineno) is not None:
                self.lines[self.i] = (lineno, col, item)
                out.append(self.node(col))
                continue
            self.i += 1
            out.append(_inline_value(item, lineno))


def load_yaml_documents(data):
    """Returns [(first line, value)] for every non-empty document."""
    docs = []
    current = []
    start = None

    def flush():
        if current:
            b = _Block(current)
            v = b.node(current[0][1])
            if b.i != len(current):
                raise YamlError(current[b.i][0], "unexpected content (bad indentation?)")
            if v is not None:
                docs.append((start, v))

    for n, raw in enumerate(data.split("\n"), 1):
        raw = raw.rstrip("\r")
        if raw.startswith("%"):
            raise YamlError(n, "directives are not supported by this checker")
        if re.match(r"^(---|\.\.\.)(\s.*)?$", raw):
            tail = raw[3:].strip()
            if tail and not tail.startswith("#"):
                raise YamlError(n, "content after '---' is not supported by this checker")
            flush()
            current = []
            start = None
            continue
        body = raw.lstrip(" ")
        indent = len(raw) - len(body)
        if body.startswith("\t"):
            raise YamlError(n, "tabs are not allowed in indentation")
        text = _strip_comment(body, n)
        if not text:
            continue
        if start is None:
            start = n
        current.append((n, indent, text))
    flush()
    return docs


# ---- JSON Schema (draft-07 subset) ----------------------------------------------------

_ANNOTATIONS = {"$schema", "$id", "title", "description", "default", "definitions", "examples",
                "$comment"}
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def _type_name(v):
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](v):
            return name
    return type(v).__name__


def _join(path, key):
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Validator:
    def __init__(self, root):
        self.root = root

    def _ref(self, ref):
        if not ref.startswith("#/"):
            raise SchemaError(f"only local $ref is supported, got '{ref}'")
        node = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaError(f"$ref '{ref}' does not resolve")
            node = node[part]
        return node

    def errors(self, value, schema, path=""):
        if schema is True:
            return []
        if schema is False:
            return [(path, "not allowed")]
        if "$ref" in schema:  # draft-07: siblings of $ref are ignored
            return self.errors(value, self._ref(schema["$ref"]), path)
        errs = []
        for kw in schema:
            if kw in _ANNOTATIONS or kw in ("then", "else"):
                continue
            handler = getattr(self, "_kw_" + kw.replace("$", ""), None)
            if handler is None:
                raise SchemaError(f"keyword '{kw}' is not implemented by this checker")
            errs.extend(handler(value, schema[kw], schema, path))
        return errs

    def _kw_type(self, v, t, s, path):
        types = t if isinstance(t, list) else [t]
        if any(_TYPES[x](v) for x in types):
            return []
        return [(path, f"must be {' or '.join(types)}, got {_type_name(v)}")]

    def _kw_enum(self, v, e, s, path):
        if any(v == x and type(v) is type(x) for x in e):
            return []
        return [(path, f"must be one of {', '.join(json.dumps(x) for x in e)}, got {json.dumps(v)}")]

    def _kw_const(self, v, c, s, path):
        return self._kw_enum(v, [c], s, path)

    def _kw_properties(self, v, props, s, path):
        if not isinstance(v, dict):
            return []
        errs = []
        for k, sub in props.items():
            if k in v:
                errs.extend(self.errors(v[k], sub, _join(path, k)))
        return errs

    def _kw_additionalProperties(self, v, ap, s, path):
        if not isinstance(v, dict):
            return []
        known = set(s.get("properties", {}))
        errs = []
        for k in v:
            if k in known:
                continue
            if ap is False:
                errs.append((_join(path, k), "unknown field"))
            elif isinstance(ap, dict):
                errs.extend(self.errors(v[k], ap, _join(path, k)))
        return errs

    def _kw_required(self, v, req, s, path):
        if not isinstance(v, dict):
            return []
        return [(_join(path, k), "required") for k in req if k not in v]

    def _kw_propertyNames(self, v, sub, s, path):
        if not isinstance(v, dict):
            return []
        errs = []
        for k in v:
            if self.errors(k, sub, _join(path, k)):
                errs.append((_join(path, k), "key not allowed here"))
        return errs

    def _kw_items(self, v, sub, s, path):
        if not isinstance(v, list):
            return []
        if isinstance(sub, list):
            raise SchemaError("tuple 'items' is not implemented by this checker")
        errs = []
        for i, x in enumerate(v):
            errs.extend(self.errors(x, sub, _join(path, i)))
        return errs

    def _kw_minItems(self, v, n, s, path):
        return [(path, f"must have at least {n} items")] if isinstance(v, list) and len(v) < n else []

    def _kw_maxItems(self, v, n, s, path):
        return [(path, f"must have at most {n} items")] if isinstance(v, list) and len(v) > n else []

    def _kw_minimum(self, v, n, s, path):
        if _TYPES["number"](v) and v < n:
            return [(path, f"must be >= {n}, got {v}")]
        return []

    def _kw_maximum(self, v, n, s, path):
        if _TYPES["number"](v) and v > n:
            return [(path, f"must be <= {n}, got {v}")]
        return []

    def _kw_minLength(self, v, n, s, path):
        if isinstance(v, str) and len(v) < n:
            return [(path, f"must be at least {n} characters")]
        return []

    def _kw_maxLength(self, v, n, s, path):
        if isinstance(v, str) and len(v) > n:
            return [(path, f"must be at most {n} characters, got {len(v)}")]
        return []

    def _kw_pattern(self, v, p, s, path):
        if isinstance(v, str) and not re.search(p, v):
            return [(path, f"must match {p}, got {json.dumps(v)}")]
        return []

    def _kw_not(self, v, sub, s, path):
        return [] if self.errors(v, sub, path) else [(path, "matches a schema it must not match")]

    def _kw_allOf(self, v, subs, s, path):
        errs = []
        for sub in subs:
            errs.extend(self.errors(v, sub, path))
        return errs

    def _kw_anyOf(self, v, subs, s, path):
        results = [self.errors(v, sub, path) for sub in subs]
        if any(not r for r in results):
            return []
        return [(path, "matches none of the allowed forms")] + min(results, key=len)

    def _kw_oneOf(self, v, subs, s, path):
        ok = sum(1 for sub in subs if not self.errors(v, sub, path))
        return [] if ok == 1 else [(path, f"must match exactly one form, matches {ok}")]

    def _kw_if(self, v, cond, s, path):
        if not self.errors(v, cond, path):
            return self.errors(v, s["then"], path) if "then" in s else []
        return self.errors(v, s["else"], path) if "else" in s else []


# ---- command line ---------------------------------------------------------------------

_MODELINE_RE = re.compile(r"^#\s*yaml-language-server:\s*\$schema=(\S+)\s*$")


def _schema_file(schema_dir, kind):
    return os.path.join(schema_dir, kind.lower() + ".schema.json")


def check_file(path, schema_dir, want_modeline, schemas):
    """Returns (errors, problems): schema errors (exit 1) and fatal problems (exit 2)."""
    errors, problems = [], []
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return errors, [f"{path}: cannot read: {e}"]
    try:
        if path.endswith(".json"):
            docs = [(1, json.loads(data))]
        else:
            docs = load_yaml_documents(data)
    except YamlError as e:
        return errors, [f"{path}:{e.line}: {e.message}"]
    except ValueError as e:
        return errors, [f"{path}: bad JSON: {e}"]
    if not docs:
        return errors, [f"{path}: no documents"]
    kinds = set()
    for line, doc in docs:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        sfile = _schema_file(schema_dir, kind) if isinstance(kind, str) else None
        if not sfile or not os.path.exists(sfile):
            errors.append(f"{path}:{line}: kind: no schema for kind {json.dumps(kind)}")
            continue
        kinds.add(kind)
        if sfile not in schemas:
            with open(sfile, encoding="utf-8") as f:
                schemas[sfile] = json.load(f)
        v = Validator(schemas[sfile])
        try:
            errs = v.errors(doc, schemas[sfile])
        except SchemaError as e:
            return errors, [f"{sfile}: {e}"]
        for field, msg in errs:
            errors.append(f"{path}:{line}: {field or '(document)'}: {msg}")
    if want_modeline:
        first = data.split("\n", 1)[0]
        m = _MODELINE_RE.match(first)
        if not m:
            errors.append(f"{path}:1: first line must be '# yaml-language-server: $schema=...'")
        elif len(kinds) == 1:
            target = os.path.realpath(os.path.join(os.path.dirname(path), m.group(1)))
            want = os.path.realpath(_schema_file(schema_dir, kinds.pop()))
            if target != want:
                errors.append(f"{path}:1: $schema={m.group(1)} does not name {want}")
        elif len(kinds) > 1:
            errors.append(f"{path}:1: one $schema line cannot cover kinds {sorted(kinds)}")
    return errors, problems


def main(argv):
    schema_dir = None
    want_modeline = False
    files = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--schemas" and i + 1 < len(argv):
            schema_dir = argv[i + 1]
            i += 2
            continue
        if a == "--modeline":
            want_modeline = True
        elif a.startswith("-"):
            print(f"schema_check: unknown option {a}", file=sys.stderr)
            return 2
        else:
            files.append(a)
        i += 1
    if not schema_dir or not files:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    schemas = {}
    invalid = fatal = False
    for path in files:
        errors, problems = check_file(path, schema_dir, want_modeline, schemas)
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
            fatal = True
        for e in errors:
            print(e)
            invalid = True
        if not errors and not problems:
            print(f"ok {path}")
    return 2 if fatal else 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
