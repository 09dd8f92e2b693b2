-- GET a random path from a file (one path with its query string per line).
-- wrk ... -s paths.lua URL -- <paths file> <token> <seed>
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")
local paths

function init(args)
  common.auth(args[2])
  paths = common.lines(args[1])
  math.randomseed(tonumber(args[3]) or os.time())
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
