package redispresence

import "github.com/redis/go-redis/v9"

// scripts are the Lua scripts that must run as one step on Redis.
type scripts struct {
	leave, attendees, alive, sweep *redis.Script
}

func newScripts() scripts {
	return scripts{
		// leave drops one session from this node's hash and roster, and the
		// node from the room's set once its hash is empty, so a reader
		// never sees a set member without entries that is in fact alive.
		leave: redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return 1
`),
		// attendees lists a room's entries as (node, session, value)
		// triples and drops the set members whose hash has expired.
		attendees: redis.NewScript(`
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local entries = redis.call('HGETALL', ARGV[1] .. node)
  if #entries == 0 then
    redis.call('SREM', KEYS[1], node)
  else
    for i = 1, #entries, 2 do
      out[#out + 1] = node
      out[#out + 1] = entries[i]
      out[#out + 1] = entries[i + 1]
    end
  end
end
return out
`),
		// alive records that the node lives for another TTL, by Redis's
		// clock so nodes' clocks need not agree. It returns 1 when the node
		// was missing: swept as dead after a stall, or Redis lost its data.
		// The set and the node's roster expire (ARGV[3] ms) once no node
		// is left to refresh or sweep them.
		alive: redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return added
`),
		// sweep claims one node whose time has run out and returns its id
		// followed by its roster (field, value, ...), deleting the roster
		// and whatever of its room entries has not expired yet, so the
		// caller sees the node's connections as gone: of several sweeping
		// nodes exactly one gets each dead node. ARGV[2] is the presence
		// key prefix.
		sweep: redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #dead == 0 then
  return {}
end
local node = dead[1]
redis.call('ZREM', KEYS[1], node)
local roster = ARGV[1] .. node
local out = redis.call('HGETALL', roster)
redis.call('DEL', roster)
for i = 1, #out, 2 do
  local room = string.match(out[i], '^(%d+)/')
  if room then
    redis.call('DEL', ARGV[2] .. '{' .. room .. '}:node:' .. node)
    redis.call('SREM', ARGV[2] .. '{' .. room .. '}:nodes', node)
  end
end
table.insert(out, 1, node)
return out
`),
	}
}
