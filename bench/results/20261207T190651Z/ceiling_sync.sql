\set uid random(1, :nusers)
SELECT stepcoin_apply_sync(w.user_id, w.version, jsonb_build_object(
  'records', jsonb_agg(jsonb_build_object('day', x.day, 'source', 'healthkit', 'steps', x.steps, 'approved_steps', x.steps, 'device_ids', jsonb_build_array('bench-device-' || CAST(:uid AS text)), 'client_record_id', NULL, 'client_record_version', NULL, 'manual', false, 'deleted', false, 'intervals', NULL, 'status', 'approved', 'reasons', CAST('[]' AS jsonb)) ORDER BY x.day),
  'validations', coalesce(jsonb_agg(jsonb_build_object('day', x.day, 'source', 'healthkit', 'steps', x.steps, 'status', 'approved', 'rule_hits', CAST('[]' AS jsonb), 'risk_score', 0, 'stored', true) ORDER BY x.day) FILTER (WHERE x.new_day), CAST('[]' AS jsonb)),
  'days', jsonb_agg(jsonb_build_object('day', x.day, 'credited_source', 'healthkit', 'credited_steps', x.steps, 'coins_paid', x.paid, 'coins_pending', 0) ORDER BY x.day)))
FROM wallets w CROSS JOIN LATERAL (
  SELECT CAST(g AS date) AS day, coalesce(sd.credited_steps, 2000) + 300 AS steps, coalesce(sd.coins_paid, 0) + 3 AS paid, sd.user_id IS NULL AS new_day
  FROM generate_series(CAST(current_date - 6 AS timestamp), CAST(current_date AS timestamp), CAST('1 day' AS interval)) AS g
  LEFT JOIN step_days sd ON sd.user_id = w.user_id AND sd.recorded_date = CAST(g AS date)) AS x
WHERE w.user_id = md5(format('stepcoin-bench%s%s%sw%s%s', chr(58), CAST(:seed AS int), chr(58), chr(58), CAST(:uid AS int)))::uuid
GROUP BY w.user_id, w.version;
