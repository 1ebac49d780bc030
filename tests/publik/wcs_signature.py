"""Publik's URL signature computed with Python's standard library only, independently of
the gateway's Rust code: the reference the signature tests compare against.

It follows w.c.s. (wcs/api_utils.py): the signer appends orig (when given), then algo,
timestamp (UTC, %Y-%m-%dT%H:%M:%SZ) and nonce with urllib.parse.urlencode, computes the
HMAC of the query as it stands, base64-encodes it (standard alphabet) and appends
'&signature=' + urllib.parse.quote(signature). The receiver recomputes the HMAC over the
query up to '&signature=' and compares it with the decoded parameter.

    python3 wcs_signature.py sign KEY QUERY ORIG ALGO TIMESTAMP NONCE   (ORIG may be '')
    python3 wcs_signature.py check KEY QUERY          -> prints 'valid' or 'invalid'
"""

import base64
import hashlib
import hmac
import sys
import urllib.parse


def sign(key, query, orig, algo, timestamp, nonce):
    pairs = []
    if orig:
        pairs.append(('orig', orig))
    pairs += [('algo', algo), ('timestamp', timestamp), ('nonce', nonce)]
    signed = query + ('&' if query else '') + urllib.parse.urlencode(pairs)
    digest = hmac.new(key.encode('utf-8'), signed.encode('utf-8'), getattr(hashlib, algo)).digest()
    return signed + '&signature=' + urllib.parse.quote(base64.b64encode(digest))


def check(key, query):
    form = urllib.parse.parse_qs(query)
    algo = form['algo'][0]
    signed = query[: query.find('&signature=')]
    expected = base64.standard_b64encode(
        hmac.new(key.encode('utf-8'), signed.encode('utf-8'), getattr(hashlib, algo)).digest()
    )
    return hmac.compare_digest(expected, form['signature'][0].encode('ascii'))


if __name__ == '__main__':
    if sys.argv[1] == 'sign':
        print(sign(*sys.argv[2:8]))
    elif sys.argv[1] == 'check':
        print('valid' if check(sys.argv[2], sys.argv[3]) else 'invalid')
    else:
        sys.exit('usage: wcs_signature.py sign|check …')
