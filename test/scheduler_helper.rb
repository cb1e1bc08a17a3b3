# frozen_string_literal: true

require_relative "helper"
require "socket"

# Wraps a scheduler and records which hooks Ruby calls, with what. It
# responds to exactly the hooks the wrapped scheduler has, so Ruby takes the
# same paths as with the scheduler itself.
class SchedulerRecorder
  HOOKS = %i[
    fiber block unblock kernel_sleep yield io_wait io_read io_write io_pread
    io_pwrite io_select io_close process_wait address_resolve timeout_after
    blocking_operation_wait fiber_interrupt scheduler_close close
  ].freeze

  attr_reader :scheduler

  def initialize(scheduler)
    @scheduler = scheduler
    @calls = [] # Array#<< is atomic: #unblock comes from other threads too
  end

  HOOKS.each do |hook|
    define_method(hook) do |*args, &block|
      @calls << [hook, args]
      @scheduler.__send__(hook, *args, &block)
    end
  end

  def respond_to_missing?(name, include_private = false)
    @scheduler.respond_to?(name, include_private)
  end

  def respond_to?(name, include_private = false)
    return @scheduler.respond_to?(name, include_private) if HOOKS.include?(name)

    super
  end

  def method_missing(name, ...)
    @scheduler.respond_to?(name) ? @scheduler.__send__(name, ...) : super
  end

  # Hook name => times called.
  def counts
    @calls.map(&:first).tally
  end

  def count(hook)
    @calls.count { |name, _| name == hook }
  end

  # The arguments of each call of the hook.
  def args(hook)
    @calls.select { |name, _| name == hook }.map(&:last)
  end

  def hooks
    counts.keys
  end

  def clear
    @calls.clear
  end
end

# Tests that run code under UM::FiberScheduler (through a recorder).
class SchedulerTestCase < UMTestCase
  # Every hook seen by any test, for the record (printed at exit with
  # UM_HOOK_REPORT=1).
  SEEN_HOOKS = Hash.new(0)

  Minitest.after_run do
    warn "hooks called by Ruby #{RUBY_VERSION}: #{SEEN_HOOKS.sort.map { |h, n| "#{h}=#{n}" }.join(" ")}" if ENV["UM_HOOK_REPORT"] == "1"
  end

  def teardown
    Fiber.set_scheduler(nil) if Fiber.scheduler
    super
  end

  # Installs a recorder around a fresh UM::FiberScheduler, yields it, and
  # closes the scheduler afterwards (which runs every fiber to its end).
  # Returns the recorder.
  def with_scheduler(scheduler = UM::FiberScheduler.new(@machine))
    recorder = SchedulerRecorder.new(scheduler)
    Fiber.set_scheduler(recorder)
    begin
      yield recorder
    ensure
      Fiber.set_scheduler(nil)
      recorder.counts.each { |hook, n| SEEN_HOOKS[hook] += n }
    end
    recorder
  end

  # Runs the block in one fiber under a recorded scheduler. Returns the
  # block's value; an exception it raised is raised here. @recorder holds
  # the recorder afterwards.
  def scheduled(&block)
    result = error = nil
    @recorder = with_scheduler do
      Fiber.schedule do
        result = block.call
      rescue Exception => e # rubocop:disable Lint/RescueException
        error = e
      end
    end
    raise error if error

    result
  end

  # Asserts that the last #scheduled run called each of the hooks.
  def assert_hooks(*hooks, recorder: @recorder)
    missing = hooks - recorder.hooks
    assert_empty missing, "hooks not called: #{missing.inspect} (called: #{recorder.counts.inspect})"
  end

  def refute_hooks(*hooks, recorder: @recorder)
    present = hooks & recorder.hooks
    assert_empty present, "hooks called: #{present.inspect}"
  end

  # Runs the block in a new thread under a fresh UM::FiberScheduler (given to
  # the block), closes the scheduler (running every fiber to its end) and
  # returns the block's value. A run that has not ended within +seconds+
  # fails the test instead of hanging it: the thread is killed.
  def in_scheduler_thread(seconds = 5)
    thread = Thread.new do
      Thread.current.report_on_exception = false
      scheduler = UM::FiberScheduler.new
      Fiber.set_scheduler(scheduler)
      begin
        yield scheduler
      ensure
        Fiber.set_scheduler(nil)
      end
    end
    unless thread.join(seconds)
      thread.kill
      thread.join(1)
      flunk "the scheduler's thread was still running after #{seconds} s"
    end
    thread.value
  end

  # A Ruby IO pipe closed after the test.
  def io_pipe
    r, w = IO.pipe
    @ios ||= []
    @ios.push(r, w)
    [r, w]
  end

  def after_teardown
    @ios&.each { |io| io.close unless io.closed? }
    super
  end
end
