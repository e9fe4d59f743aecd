-- Appended to every scenario: prints one machine-readable line at the end
-- (and whatever the scenario's extra_report adds, if it defines one).
done = function(summary, latency, requests)
  local non2xx = summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), non2xx))
  if extra_report then extra_report() end
end
