"""The atomic claim: pop the next message and record it as unacked in one Lua script.

kombu's Redis transport pops with BRPOP and writes the unacked record afterwards, from the
worker: a worker killed (or a warm shutdown that drops a reply still in the socket) between
the two loses the message for good. Recorded in the same script, it is handed out again when
its lease lapses (tests/test_broker_claim.py).

The script pops from the first non-empty queue, in the order given (priority order). An item
it can decode as an envelope with a delivery tag, nested no deeper than the limit, is
recorded the way kombu's `QoS.append` records it (message, exchange, routing key — the queue
it came from); kombu writes the record again on delivery and removes it on ack. Anything
else is moved to the dead-letter list in the same step, never recorded: Redis's Lua JSON
decoder accepts 1,000 levels of nesting, Python's fails near that, and a record Python
cannot decode would stop every worker that tries to restore it.
"""

from __future__ import annotations

from dataclasses import dataclass

CLAIMED, DEAD = b"claimed", b"dead"

# KEYS: the queue lists (in priority order), unacked hash, unacked index, dead-letter list
# ARGV: now, max depth, dead-letter max length, then the routing key (queue name) of each list
# Returns false (all empty), or {list, item, "claimed", tag}, or {list, "", "dead", reason, size}.
CLAIM_SCRIPT = """
local n = #KEYS - 3
local unacked, unacked_index, dead = KEYS[n + 1], KEYS[n + 2], KEYS[n + 3]
local now, max_depth, dead_max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local function too_deep(value, room)
  if type(value) ~= 'table' then return false end
  if room <= 0 then return true end
  for _, child in pairs(value) do
    if too_deep(child, room - 1) then return true end
  end
  return false
end

local function refusal(item)
  local ok, message = pcall(cjson.decode, item)
  if not ok then return 'not JSON, or nested deeper than 1000 levels' end
  if type(message) ~= 'table' then return 'not a JSON object' end
  if too_deep(message, max_depth) then return 'JSON nested deeper than ' .. max_depth .. ' levels' end
  local properties = message['properties']
  if type(properties) ~= 'table' or type(properties['delivery_tag']) ~= 'string'
      or properties['delivery_tag'] == '' then
    return 'no properties.delivery_tag string'
  end
  return nil, properties['delivery_tag']
end

for i = 1, n do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local routing_key = ARGV[i + 3]
    local reason, tag = refusal(item)
    if reason then
      local meta = cjson.encode({at = tonumber(now), source = 'queue', queue = routing_key, reason = reason})
      redis.call('LPUSH', dead, meta .. '\\n' .. item)
      redis.call('LTRIM', dead, 0, dead_max - 1)
      return {KEYS[i], '', 'dead', reason, #item}
    end
    redis.call('ZADD', unacked_index, now, tag)
    redis.call('HSET', unacked, tag, '[' .. item .. ', "", ' .. cjson.encode(routing_key) .. ']')
    return {KEYS[i], item, 'claimed', tag}
  end
end
return false
"""


@dataclass(frozen=True)
class Claim:
    """A claim script's answer for one item."""

    key: str  # the list it came from (with the global key prefix, if any)
    item: bytes  # the item (empty when refused: it is in the dead-letter list)
    claimed: bool
    tag: str  # the delivery tag (claimed) or why it was refused
    size: int  # the item's size in bytes


def parse_reply(reply: list[bytes | int]) -> Claim:
    key, item, status, detail = reply[:4]
    assert isinstance(key, bytes) and isinstance(item, bytes) and isinstance(detail, bytes)
    claimed = status == CLAIMED
    size = len(item) if claimed else int(reply[4])
    return Claim(key.decode(), item, claimed, detail.decode("utf-8", "replace"), size)
