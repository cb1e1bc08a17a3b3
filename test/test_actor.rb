# frozen_string_literal: true

require_relative "helper"

class ActorTest < UMTestCase
  class Counter
    attr_reader :log

    def initialize
      @total = 0
      @log = []
    end

    def add(n, by: 1)
      @log << n
      @total += n * by
    end

    def total = @total

    def slow_total(machine)
      machine.sleep(0.01)
      @total
    end

    def fail!(message) = raise(ArgumentError, message)
  end

  def test_call_and_cast
    counter = Counter.new
    actor = @machine.spin_actor(counter)
    assert_kind_of UM::Actor, actor
    assert_kind_of Fiber, actor
    assert_same actor, actor.cast(:add, 2)
    actor.cast(:add, 3, by: 10)
    assert_equal 32, actor.call(:total)
    assert_equal [2, 3], counter.log
    assert_equal 33, actor.call(:add, 1)
    assert_same counter, @machine.join(actor.stop)
  end

  def test_messages_run_in_order
    counter = Counter.new
    actor = @machine.spin_actor(counter)
    callers = 10.times.map { |i| @machine.spin { actor.call(:add, i) } }
    @machine.join(*callers)
    assert_equal 10.times.to_a, counter.log
    actor.stop
    @machine.join(actor)
  end

  def test_call_waits_only_the_caller
    actor = @machine.spin_actor(Counter.new)
    log = []
    other = @machine.spin { log << :other }
    assert_equal 0, actor.call(:slow_total, @machine)
    assert_equal [:other], log
    @machine.join(other, actor.stop)
  end

  def test_error_in_call_raises_in_caller_and_actor_goes_on
    actor = @machine.spin_actor(Counter.new)
    e = assert_raises(ArgumentError) { actor.call(:fail!, "bad") }
    assert_equal "bad", e.message
    assert_raises(NoMethodError) { actor.call(:nope) }
    assert_equal 1, actor.call(:add, 1)
    @machine.join(actor.stop)
  end

  def test_error_in_cast_ends_the_actor
    actor = @machine.spin_actor(Counter.new)
    actor.cast(:fail!, "in cast")
    queued = @machine.spin { actor.call(:total) }
    result = @machine.join(actor)
    assert_kind_of ArgumentError, result
    e = @machine.join(queued)
    assert_kind_of UM::Error, e
    assert_match(/stopped/, e.message)
    assert_raises(UM::Error) { actor.call(:total) }
    assert_raises(UM::Error) { actor.cast(:total) }
  end

  def test_call_from_another_thread
    actor = @machine.spin_actor(Counter.new)
    t = Thread.new { 5.times.map { |i| actor.call(:add, i) } }
    Timeout.timeout(10) do
      @machine.sleep(0.001) until t.join(0)
    end
    assert_equal [0, 1, 3, 6, 10], t.value
    @machine.join(actor.stop)
  end

  def test_actor_cannot_call_itself
    actor = nil
    target = Object.new
    target.define_singleton_method(:me) { actor.call(:object_id) }
    actor = @machine.spin_actor(target)
    assert_raises(UM::Error) { actor.call(:me) }
    @machine.join(actor.stop)
  end
end
