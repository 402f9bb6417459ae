-- wrk script: 16 requests for "/" written back to back on each connection (HTTP pipelining).
init = function(args)
   local depth = tonumber(os.getenv("WRK_PIPELINE") or "16")
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end
