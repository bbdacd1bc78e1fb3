"""moto_server with one change: a transaction backs up only the items it names.

Stock moto 5.x deep-copies every table a TransactWriteItems call names before applying it,
so that a failed transaction can be rolled back. That costs about 50 us per stored item per
transaction (1.2 s per transaction on a 20,000-item table, measured here), so the
8 writers x 2,000 messages concurrency test would take hours. This launcher leaves moto's
transaction code as it is and swaps only the backup: tables are no longer copied; instead the
previous version of each item the transaction names is kept, and put back if the call fails.
Parsing, condition evaluation, updates and the answers on the wire are all moto's own. The
store conformance suite, whose transaction cases check that a failed transaction changes
nothing, runs against this server as well (storetest.JournaledEnv).

Usage: python3 moto_journaled.py [moto_server arguments]
"""

import copy
import sys

import moto.dynamodb.models as models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main


class _TablesNotCopied:
    """Stands in for the copy module inside moto.dynamodb.models: a Table is not copied."""

    def deepcopy(self, x, memo=None):
        if isinstance(x, Table):
            return x
        return copy.deepcopy(x, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


models.copy = _TablesNotCopied()
_stock_transact_write_items = models.DynamoDBBackend.transact_write_items


def _key_of(table, op):
    attrs = op.get("Item") or op.get("Key") or {}
    hash_key = DynamoType(attrs[table.hash_key_attr])
    range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    return hash_key, range_key


def _restore(table, hash_key, range_key, item):
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
        return
    if item is None:
        table.items.get(hash_key, {}).pop(range_key, None)
        if hash_key in table.items and not table.items[hash_key]:
            del table.items[hash_key]
    else:
        table.items[hash_key][range_key] = item


def transact_write_items(self, transact_items):
    saved = []
    for entry in transact_items:
        op = next(iter(entry.values()), {})
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue
        try:
            hash_key, range_key = _key_of(table, op)
        except KeyError:
            continue  # moto rejects the malformed op itself, before writing anything
        saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    try:
        _stock_transact_write_items(self, transact_items)
    except BaseException:
        for table, hash_key, range_key, item in reversed(saved):
            _restore(table, hash_key, range_key, item)
        raise


models.DynamoDBBackend.transact_write_items = transact_write_items

if __name__ == "__main__":
    sys.exit(main())
