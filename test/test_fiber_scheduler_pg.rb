# frozen_string_literal: true

require_relative "scheduler_helper"
require_relative "support/postgres"
require "pg"

# The pg gem against a throwaway PostgreSQL server (test/support/postgres.rb),
# under UM::FiberScheduler. pg's exec is async_exec: libpq sends and receives
# on the socket itself and pg waits for the socket with IO#wait, so the only
# hook it drives is io_wait (connecting too: the server is reached through a
# Unix socket, no DNS). Only #cancel uses Ruby sockets (io_write, io_read).
class FiberSchedulerPGTest < SchedulerTestCase
  def setup
    super
    @conns = []
    TestPostgres.start # fails the test with the reason when there is no server
  end

  def teardown
    @conns.each(&:close)
    super
  end

  def connect
    PG.connect(**TestPostgres.connect_params).tap { |conn| @conns << conn }
  end

  def sleep_query(conn, i)
    conn.exec_params("SELECT pg_sleep(0.1), $1::int AS n", [i]).getvalue(0, 1).to_i
  end

  def test_concurrent_queries_are_faster_than_sequential
    skip_timing_under_gc_stress
    count = 10
    conns = Array.new(count)
    connected = with_scheduler { count.times { |i| Fiber.schedule { conns[i] = connect } } }
    assert conns.all? { |conn| conn&.status == PG::CONNECTION_OK }
    assert_equal [:fiber, :io_wait, :scheduler_close], connected.hooks.sort

    t0 = monotonic
    sequential = scheduled { conns.each_with_index.map { |conn, i| sleep_query(conn, i) } }
    sequential_time = monotonic - t0

    concurrent = []
    t0 = monotonic
    recorder = with_scheduler do
      conns.each_with_index { |conn, i| Fiber.schedule { concurrent[i] = sleep_query(conn, i) } }
    end
    concurrent_time = monotonic - t0

    ratio = sequential_time / concurrent_time
    warn format("\npg: %d queries concurrent %.2f s vs sequential %.2f s (%.1fx)",
                count, concurrent_time, sequential_time, ratio)
    assert_equal (0...count).to_a, sequential
    assert_equal (0...count).to_a, concurrent
    assert_operator sequential_time, :>=, count * 0.1
    assert_operator ratio, :>=, 3, "concurrent queries are not faster"
    # Each fiber waits for its socket to become readable at least once.
    assert_equal [:fiber, :io_wait, :scheduler_close], recorder.hooks.sort
    assert_operator recorder.count(:io_wait), :>=, count
    assert recorder.args(:io_wait).all? { |_io, events, timeout| events == IO::READABLE && timeout.nil? }
  end

  def test_query_error_in_a_fiber
    results = scheduled do
      conn = connect
      missing = assert_raises(PG::UndefinedTable) { conn.exec("SELECT * FROM no_such_table") }
      syntax = assert_raises(PG::SyntaxError) { conn.exec("SELEC 1") }
      [missing.message, syntax.message, conn.exec("SELECT 1 + 1").getvalue(0, 0)]
    end
    assert_match(/relation "no_such_table" does not exist/, results[0])
    assert_match(/syntax error at or near "SELEC"/, results[1])
    assert_equal "2", results[2] # the connection goes on
    assert_hooks :io_wait
  end

  # Timeout.timeout interrupts the wait for the result, but the query goes
  # on in the server: pg leaves the connection busy, and its next exec
  # first waits for (and discards) the old result. #cancel ends it early.
  def test_timeout_then_cancel
    results = scheduled do
      conn = connect
      t0 = monotonic
      assert_raises(Timeout::Error) { Timeout.timeout(0.05) { conn.async_exec("SELECT pg_sleep(10)") } }
      timed_out = monotonic - t0
      busy = conn.transaction_status
      cancelled = conn.cancel
      value = conn.async_exec("SELECT 42").getvalue(0, 0)
      [timed_out, busy, cancelled, value, monotonic - t0, conn.transaction_status]
    end
    timed_out, busy, cancelled, value, total, idle = results
    assert_operator timed_out, :<, 1
    assert_equal PG::PQTRANS_ACTIVE, busy
    assert_nil cancelled # nil: the cancel request was sent
    assert_equal "42", value
    assert_operator total, :<, 5, "the cancelled pg_sleep(10) was waited for"
    assert_equal PG::PQTRANS_IDLE, idle
    # #cancel sends the cancel request on a socket of its own.
    assert_hooks :timeout_after, :io_wait, :io_write, :io_read
  end

  def test_timeout_without_cancel_waits_for_the_old_query
    skip_timing_under_gc_stress
    results = scheduled do
      conn = connect
      assert_raises(Timeout::Error) { Timeout.timeout(0.05) { conn.async_exec("SELECT pg_sleep(0.5)") } }
      t0 = monotonic
      value = conn.async_exec("SELECT 'next'").getvalue(0, 0)
      [value, monotonic - t0, conn.status]
    end
    value, waited, status = results
    assert_equal "next", value
    assert_operator waited, :>=, 0.3
    assert_equal PG::CONNECTION_OK, status
  end
end
