"""The tests `make check` leaves out: the `slow` marker, set here by name so the test files stay as they are.

Each took over ~2 s on the shared 2-core machine (browsers, `make run`, concurrent processes, 30-day outages and
year-long backfills, retries that wait out their back-off, reference comparisons of every grain). `make test`
runs them all. A new slow test can go in this list or carry `@pytest.mark.slow` itself; to see what is slow,
`pytest --durations=30`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# test file (under tests/) -> test functions (every parametrization of each); "*": every test of the file
SLOW: dict[str, set[str]] = {
    "api/test_data_api.py": {"*"},            # 78 tests against one real API over a real lake: ~40 s
    # A real API process over a filled lake per module (test_read_api keeps one such module in the fast lane).
    "api/test_awareness_api.py": {"*"},
    "api/test_socialmedia_api.py": {"*"},
    "api/test_pipeline_api.py": {"*"},
    "reports/test_report_prefetch.py": {"*"},
    "warehouse/test_series_batch.py": {"*"},
    "dashboard/test_access.py": {"test_python_m_dashboard_refuses_an_exposed_host_without_a_password_in_one_line"},
    "test_config.py": {"test_every_process_refuses_a_bad_config_at_start_with_the_same_line"},
    "alerts/test_rules.py": {"*"},            # months of buckets judged through the real cube: 2 to 13 s each
    "warehouse/test_lake_creation.py": {"*"},  # spawned writers creating lakes
    "warehouse/test_sql_sandbox.py": {
        "test_hostile_sql_is_refused_or_stopped_and_changes_nothing",
        "test_the_spare_worker_serves_one_query_sees_new_commits_and_keeps_the_limits",
        "test_only_two_queries_run_at_once",
        "test_a_stream_gives_every_row_in_batches_and_ends_its_worker",
        "test_a_stream_past_its_time_limit_is_refused_not_cut_short",
    },
    "warehouse/test_timegrid.py": {
        "test_series_at_every_dst_change_match_a_recomputation_from_raw_rows",
        "test_rollups_keep_the_wall_clock_and_the_start_instant_of_each_bucket",
        "test_a_lake_built_before_bucket_utc_rebuilds_its_rollups_on_the_next_update",
    },
    "api/test_beacon_api.py": {
        "test_every_hit_answered_2xx_survives_a_sigkill_under_load_and_is_stored_once",
        "test_the_snippet_counts_a_page_view_and_spa_navigation_in_a_real_browser",
        "test_webtraffic_answers_the_contract_at_all_six_grains",
    },
    "api/test_github_webhook.py": {
        "test_drained_deliveries_feed_the_metrics_and_a_broken_one_is_quarantined",
    },
    "collectors/test_beacon.py": {
        "test_a_late_hit_recounts_the_sessions_and_first_visits_it_changes",
        "test_a_visitor_first_seen_last_year_is_returning_in_this_years_minute_updates",
        "test_a_visitor_from_a_year_before_is_returning_in_the_next_years_updates",
        "test_an_iso_week_across_new_year_keeps_last_years_days_in_minute_updates",
        "test_buckets_are_local_periods_of_the_reporting_time_zone",
        "test_every_grain_counts_as_documented",
        "test_one_drain_moves_every_inbox_kind_through_its_collector",
        "test_series_answer_distinct_metrics_with_empty_buckets_and_pageviews_by_path",
        "test_visitors_are_counted_in_local_periods_of_a_half_hour_zone",
    },
    "collectors/test_github.py": {
        "test_a_server_that_keeps_failing_fails_the_run_which_the_next_run_recovers",
        "test_backfill_keeps_only_the_range_and_leaves_the_cursor_alone",
        "test_drafts_seen_by_an_authenticated_poller_are_not_counted_until_published",
        "test_malformed_api_items_are_quarantined_and_the_rest_is_stored",
        "test_operator_errors_name_what_to_fix",
        "test_poll_matches_the_simulator_and_a_second_run_reads_only_the_tail",
        "test_stars_missed_during_a_webhook_outage_are_recovered_from_the_stargazer_history",
        "test_throttling_and_server_errors_are_retried_honouring_retry_after",
    },
    "collectors/test_linkedin.py": {
        "test_a_30_day_outage_is_caught_up_in_chunks_to_what_a_never_stopped_run_stored",
        "test_an_unusable_or_empty_answer_loses_no_day",
        "test_backfill_reads_the_range_linkedin_still_serves_and_leaves_the_cursor",
        "test_malformed_elements_are_quarantined_and_the_rest_stored",
        "test_the_exact_count_and_daily_gains_give_the_follower_history",
        "test_the_first_run_stops_at_linkedins_twelve_months_and_follows_pages",
        "test_throttling_server_errors_and_dropped_connections_are_retried",
    },
    "collectors/test_meltwater.py": {
        "test_a_30_day_outage_is_caught_up_in_chunks_to_what_a_never_stopped_run_stored",
        "test_a_refused_key_and_an_unknown_saved_search_name_their_config_keys",
        "test_backfill_reads_the_range_and_leaves_the_cursor",
        "test_daily_mentions_per_brand_settle_and_only_the_late_days_are_asked_again",
        "test_malformed_days_and_unusable_answers_are_quarantined_without_losing_days",
        "test_throttling_server_errors_and_dropped_connections_are_retried",
    },
    "collectors/test_s3_access_logs.py": {
        "test_a_crash_mid_run_neither_loses_nor_duplicates",
        "test_a_failing_commit_leaves_neither_records_nor_cursor",
        "test_downloads_follow_the_contract_rule",
        "test_each_log_object_is_read_once_and_late_deliveries_are_caught",
        "test_records_delivered_in_two_objects_count_once",
    },
    "collectors/test_salesforce.py": {
        "test_a_30_day_outage_is_caught_up_to_what_a_never_stopped_run_built",
        "test_a_limit_that_does_not_lift_fails_the_run_clearly_and_the_next_run_recovers",
        "test_an_answer_cut_short_fails_the_run_without_moving_the_cursor_and_the_next_run_reads_it",
        "test_an_expired_session_logs_in_again_once_and_a_revoked_one_fails_naming_the_keys",
        "test_backfill_reads_the_records_created_in_the_range_and_leaves_the_cursor_alone",
        "test_bad_or_missing_credentials_fail_with_the_config_keys_and_never_the_secret",
        "test_first_run_reads_the_history_window_page_by_page_and_the_next_run_only_what_changed",
        "test_malformed_records_are_quarantined_and_the_rest_of_the_page_is_stored",
        "test_old_leads_imported_late_recompute_their_creation_day",
        "test_request_limits_server_errors_and_dropped_connections_are_retried_honouring_retry_after",
        "test_stages_can_come_from_a_date_field_without_status_history",
        "test_the_demo_simulator_serves_https_with_the_ca_it_writes",
    },
    "collectors/test_seo.py": {
        "test_a_30_day_outage_is_caught_up_in_chunks_to_what_a_never_stopped_run_stored",
        "test_a_refused_key_and_an_unknown_project_name_their_config_keys",
        "test_csv_files_are_imported_once_and_bad_rows_quarantined",
        "test_days_the_tracker_missed_carry_the_previous_share_and_backfill_leaves_the_cursor",
        "test_malformed_rankings_and_unusable_pages_are_quarantined_without_losing_days",
        "test_rankings_of_every_domain_are_stored_and_shares_of_voice_sum_to_100",
        "test_throttling_server_errors_and_dropped_connections_are_retried",
    },
    "collectors/test_twitter.py": {
        "test_a_30_day_outage_leaves_no_duplicate_and_carries_the_gauge_across_the_gap",
        "test_a_poll_stores_each_account_and_the_total_at_the_api_clock",
        "test_a_refused_token_names_bearer_token_env_and_is_not_logged",
        "test_a_used_up_rate_limit_fails_the_run_until_its_reset",
        "test_backfill_has_nothing_to_read_and_is_not_a_failure",
        "test_no_account_found_fails_the_run_naming_the_accounts_key",
        "test_rate_limits_server_errors_and_timeouts_are_retried",
        "test_unknown_and_suspended_accounts_are_quarantined_and_the_rest_stored",
    },
    "collectors/test_youtube.py": {
        "test_a_30_day_outage_is_caught_up_to_what_a_never_stopped_run_stored",
        "test_a_reporting_delay_is_waited_out_not_filled_with_zeros",
        "test_first_run_backfills_in_chunks_and_counts_missing_days_only_once_a_later_day_is_reported",
        "test_later_runs_ask_only_from_the_cursor_and_replace_provisional_days",
        "test_malformed_answers_are_quarantined_and_never_counted_as_zero",
        "test_operator_errors_fail_the_run_with_the_config_key_and_keep_secrets_out",
        "test_throttling_server_errors_timeouts_and_expired_tokens_are_retried",
    },
    "dashboard/test_app.py": {
        "test_real_browser_renders_the_dashboard",
    },
    "test_make_run.py": {
        "test_the_demo_comes_up_serves_data_and_stops_cleanly",
    },
    "test_scheduler_cli.py": {
        "test_a_source_that_cannot_be_reached_fails_the_run_and_is_counted",
        "test_collect_backfill_and_status",
        "test_failures_are_one_line_with_non_zero_exit",
    },
    "warehouse/test_concurrency.py": {
        "test_one_writer_and_four_readers_at_once_never_error_and_see_whole_batches",
        "test_two_writers_committing_at_once_both_succeed_and_lose_no_batch",
    },
    "warehouse/test_cube.py": {
        "test_changing_the_timezone_rebuilds_every_rollup",
        "test_every_grain_matches_the_reference_in_new_york",
        "test_many_incremental_batches_give_the_same_rollups_as_one",
        "test_partial_downloads_group_by_utc_hour_in_a_half_hour_zone_even_when_records_arrive_late",
        "test_previous_values_match_the_reference",
        "test_zones_with_half_hour_offsets_bucket_by_local_time",
    },
}


def mark_slow(items: list[pytest.Item]) -> None:
    """Add the `slow` marker to the listed tests; warn about names that are no longer in their module."""
    checked: set[str] = set()
    for item in items:
        path = Path(str(item.path))
        if TESTS not in path.parents:
            continue
        file = path.relative_to(TESTS).as_posix()
        names = SLOW.get(file, set())
        if "*" in names or getattr(item, "originalname", item.name) in names:
            item.add_marker(pytest.mark.slow)
        if file not in checked and names and getattr(item, "module", None) is not None:
            checked.add(file)
            if missing := sorted(n for n in names - {"*"} if not hasattr(item.module, n)):
                warnings.warn(pytest.PytestConfigWarning(
                    f"tests/slow_tests.py lists tests that tests/{file} no longer has: {', '.join(missing)}"))
