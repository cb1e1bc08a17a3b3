# frozen_string_literal: true

require_relative "helper"

# Lost wake-ups show as fibers that wait forever: every wait on a result in
# these tests is guarded, so a regression fails instead of hanging.
module SyncGuard
  class Hang < StandardError; end

  def guarded(seconds = 3, what = "wait", &block)
    @machine.timeout(seconds, Hang, &block)
  rescue Hang
    flunk "#{what} did not finish within #{seconds}s (lost wake-up?)"
  end

  # Runs the block in a forked child and returns its value. A thread stuck
  # on a lost wake-up cannot be joined (nor killed at exit): the child is
  # killed when it overruns, and the test fails.
  def in_child_within(seconds)
    r, w = IO.pipe
    pid = fork do
      r.close
      w.write(Marshal.dump(yield))
      exit!(0)
    rescue Exception => e # rubocop:disable Lint/RescueException
      w.write(Marshal.dump("#{e.class}: #{e.message}"))
      exit!(1)
    end
    w.close
    deadline = monotonic + seconds
    until Process.wait(pid, Process::WNOHANG)
      if monotonic > deadline
        Process.kill(:KILL, pid)
        Process.wait(pid)
        flunk "child did not finish within #{seconds}s (lost wake-up?)"
      end
      @machine.sleep(0.01)
    end
    value = Marshal.load(r.read)
    assert $?.success?, "child failed: #{value}"
    value
  ensure
    r.close
  end

  # The oldest fiber of the list still running: the first in the futex's
  # FIFO of waiters, the one a wake goes to.
  def oldest_waiting(fibers, rng)
    live = fibers.reject(&:done?)
    rng.rand < 0.5 ? live.first : live.sample(random: rng)
  end
end

class MutexTest < UMTestCase
  include SyncGuard
  def test_synchronize_uncontended
    mutex = UM::Mutex.new
    refute mutex.locked?
    assert_equal :value, @machine.synchronize(mutex) { assert mutex.locked?; :value }
    refute mutex.locked?
  end

  def test_synchronize_releases_on_exception
    mutex = UM::Mutex.new
    assert_raises(RuntimeError) { @machine.synchronize(mutex) { raise "boom" } }
    refute mutex.locked?
    assert_equal 1, @machine.synchronize(mutex) { 1 }
  end

  def test_recursive_locking
    mutex = UM::Mutex.new
    e = assert_raises(UM::Error) { @machine.synchronize(mutex) { @machine.synchronize(mutex) { 1 } } }
    assert_match(/recursive/, e.message)
    refute mutex.locked?
  end

  def test_contended_between_fibers
    mutex = UM::Mutex.new
    log = []
    fibers = (1..4).map do |i|
      @machine.spin do
        @machine.synchronize(mutex) do
          log << [i, :in]
          @machine.sleep(0.005)
          log << [i, :out]
        end
      end
    end
    @machine.join(*fibers)
    # Critical sections never overlap.
    log.each_slice(2) { |a, b| assert_equal [a[0], :out], b }
    assert_equal 8, log.size
    refute mutex.locked?
    assert_no_pending_ops
  end

  def test_handoff_order
    mutex = UM::Mutex.new
    buf = []
    fibers = (1..3).map do |i|
      @machine.spin do
        @machine.synchronize(mutex) do
          buf << i * 10 + 1
          @machine.sleep(0.005)
          buf << i * 10 + 2
        end
        @machine.snooze
        buf << i * 10 + 3
      end
    end
    @machine.join(*fibers)
    assert_equal [11, 12, 21, 13, 22, 31, 23, 32, 33], buf
  end

  def test_timeout_while_waiting_for_mutex
    mutex = UM::Mutex.new
    holder = @machine.spin { @machine.synchronize(mutex) { @machine.sleep(0.05) } }
    @machine.snooze
    assert_raises(Timeout::Error) do
      @machine.timeout(0.01, Timeout::Error) { @machine.synchronize(mutex) { flunk "got the lock" } }
    end
    @machine.join(holder)
    assert_equal :free, @machine.synchronize(mutex) { :free }
    assert_no_pending_ops
  end

  def test_two_threads_each_with_its_machine
    mutex = UM::Mutex.new
    counter = 0
    threads = 2.times.map do
      Thread.new do
        m = Thread.current.machine
        fibers = 5.times.map do
          m.spin do
            200.times do
              m.synchronize(mutex) do
                v = counter
                m.snooze if rand < 0.1 # others try meanwhile
                counter = v + 1
              end
            end
          end
        end
        m.join(*fibers)
      end
    end
    threads.each(&:join)
    assert_equal 2000, counter
  end

  # The unlocker's wake goes to the first waiter, which is interrupted just
  # before the wake is submitted: it must pass the wake on to the next one.
  def test_wake_taken_by_interrupted_waiter_is_passed_on
    mutex = UM::Mutex.new
    log = []
    a = nil
    holder = @machine.spin do
      @machine.synchronize(mutex) do
        @machine.sleep(0.01) # a and b wait meanwhile
        @machine.schedule(a, RuntimeError.new("interrupted"))
      end
    end
    a = @machine.spin { @machine.synchronize(mutex) { log << :a } }
    b = @machine.spin { @machine.synchronize(mutex) { log << :b } }
    guarded(2, "second waiter") { @machine.join(holder, b) }
    assert_kind_of RuntimeError, @machine.join(a)
    assert_equal [:b], log
    refute mutex.locked?
    assert_no_pending_ops
  end

  def test_wake_taken_by_terminated_waiter_is_passed_on
    mutex = UM::Mutex.new
    a = nil
    holder = @machine.spin do
      @machine.synchronize(mutex) do
        @machine.sleep(0.01)
        @machine.terminate(a)
      end
    end
    a = @machine.spin { @machine.synchronize(mutex) { :a } }
    b = @machine.spin { @machine.synchronize(mutex) { :b } }
    assert_equal :b, guarded(2, "second waiter") { @machine.join(b) }
    assert_kind_of UM::Terminate, @machine.join(holder, a).last
    refute mutex.locked?
  end

  # The unlocker itself is interrupted before its wake reaches the kernel:
  # the wake must still happen.
  def test_interrupted_unlocker_still_wakes
    mutex = UM::Mutex.new
    holder = @machine.spin do
      @machine.synchronize(mutex) do
        @machine.sleep(0.01)
        @machine.schedule(Fiber.current, RuntimeError.new("interrupted"))
      end
    end
    waiter = @machine.spin { @machine.synchronize(mutex) { :got_it } }
    assert_equal :got_it, guarded(2, "waiter") { @machine.join(waiter) }
    assert_kind_of RuntimeError, @machine.join(holder)
    refute mutex.locked?
    assert_no_pending_ops
  end

  # Lockers with and without timeouts; holders interrupt the oldest waiter
  # (or themselves) before unlocking. In the end every locker got the lock
  # or was interrupted, none waits, and the mutex is free.
  def test_stress_interrupted_waiters_and_unlockers
    skip_timing_under_gc_stress
    mutex = UM::Mutex.new
    rng = Random.new(1234)
    inside = 0
    overlaps = 0
    got = 0
    lockers = []
    40.times do |i|
      lockers << @machine.spin do
        lock = lambda do
          @machine.synchronize(mutex) do
            inside += 1
            overlaps += 1 if inside > 1
            @machine.sleep(rng.rand(0.0001..0.0005))
            case rng.rand
            when 0...0.3 then (f = oldest_waiting(lockers, rng)) && @machine.terminate(f)
            when 0.3...0.4 then (f = oldest_waiting(lockers, rng)) && @machine.schedule(f, RuntimeError.new("x"))
            when 0.4...0.5 then @machine.schedule(Fiber.current, RuntimeError.new("self"))
            end
            got += 1
          ensure
            inside -= 1
          end
        end
        begin
          i % 3 == 0 ? @machine.timeout(rng.rand(0.0005..0.005), Timeout::Error, &lock) : lock.()
          @machine.snooze # a pending self-interruption lands here
        rescue Timeout::Error, RuntimeError
        end
      end
    end
    guarded(5, "lockers") { @machine.join(*lockers) }
    assert_equal 0, overlaps
    assert_operator got, :>, 0
    refute mutex.locked?
    assert_equal :free, guarded(1, "final lock") { @machine.synchronize(mutex) { :free } }
    assert_no_pending_ops
  end

  # The same across two threads, each with its machine: a wake from one
  # machine goes to a waiter of the other.
  def test_stress_across_threads
    skip_timing_under_gc_stress
    result = in_child_within(10) do
      mutex = UM::Mutex.new
      inside = 0
      overlaps = 0
      threads = 2.times.map do |t|
        Thread.new do
          m = UM.new
          rng = Random.new(99 + t)
          lockers = []
          20.times do |i|
            lockers << m.spin do
              lock = lambda do
                m.synchronize(mutex) do
                  inside += 1
                  overlaps += 1 if inside > 1
                  m.sleep(rng.rand(0.0001..0.0005))
                  if rng.rand < 0.3
                    live = lockers.reject(&:done?)
                    f = rng.rand < 0.5 ? live.first : live.sample(random: rng)
                    m.terminate(f) if f
                  end
                ensure
                  inside -= 1
                end
              end
              begin
                i % 3 == 0 ? m.timeout(rng.rand(0.0005..0.005), Timeout::Error, &lock) : lock.()
              rescue Timeout::Error
              end
            end
          end
          m.join(*lockers)
          :done
        end
      end
      threads.each(&:join)
      { overlaps: overlaps, values: threads.map(&:value), locked: mutex.locked?,
        final: UM.new.synchronize(mutex) { :free } }
    end
    assert_equal({ overlaps: 0, values: %i[done done], locked: false, final: :free }, result)
  end

  def test_bad_arguments
    assert_raises(TypeError) { @machine.synchronize(Mutex.new) { 1 } }
    assert_raises(TypeError) { @machine.synchronize(nil) { 1 } }
    assert_raises(LocalJumpError) { @machine.synchronize(UM::Mutex.new) }
  end
end

class QueueTest < UMTestCase
  include SyncGuard
  def test_push_pop_shift_unshift
    q = UM::Queue.new
    assert_equal 0, q.count
    assert_same q, @machine.push(q, :a)
    @machine.push(q, :b)
    assert_same q, @machine.unshift(q, :z)
    assert_equal 3, q.count
    assert_equal :b, @machine.pop(q)    # tail
    assert_equal :z, @machine.shift(q)  # head
    assert_equal :a, @machine.shift(q)
    assert_equal 0, q.count
  end

  def test_waiting_consumers
    q = UM::Queue.new
    buf = []
    @machine.spin { buf << [1, @machine.pop(q)] }
    @machine.spin { buf << [2, @machine.pop(q)] }
    @machine.snooze
    assert_equal [], buf
    @machine.push(q, :foo)
    @machine.snooze
    assert_equal [[1, :foo]], buf
    @machine.push(q, :bar)
    @machine.snooze
    assert_equal [[1, :foo], [2, :bar]], buf
    assert_equal 0, q.count
    assert_no_pending_ops
  end

  def test_producers_and_consumers
    q = UM::Queue.new
    consumers = 4.times.map do
      @machine.spin do
        got = []
        while (v = @machine.shift(q)) != :stop
          got << v
        end
        got
      end
    end
    producers = 4.times.map do |p|
      @machine.spin do
        100.times do |i|
          @machine.push(q, p * 1000 + i)
          @machine.snooze if i % 7 == 0
        end
      end
    end
    @machine.join(*producers)
    4.times { @machine.push(q, :stop) }
    all = @machine.join(*consumers).flatten
    assert_equal 400, all.size
    assert_equal all.sort, all.uniq.sort
  end

  def test_two_threads_each_with_its_machine
    q = UM::Queue.new
    results = UM::Queue.new
    consumer = Thread.new do
      m = Thread.current.machine
      sum = 0
      while (v = m.shift(q)) != :done
        sum += v
      end
      m.push(results, sum)
    end
    producer = Thread.new do
      m = Thread.current.machine
      1.upto(1000) do |i|
        m.push(q, i)
        m.sleep(0) if i % 100 == 0
      end
      m.push(q, :done)
    end
    [producer, consumer].each(&:join)
    assert_equal 500_500, @machine.shift(results)
  end

  def test_timeout_while_waiting
    q = UM::Queue.new
    assert_raises(Timeout::Error) { @machine.timeout(0.01, Timeout::Error) { @machine.shift(q) } }
    assert_no_pending_ops
    @machine.push(q, :later)
    assert_equal :later, @machine.shift(q)
  end

  def test_machine_of_another_thread
    q = UM::Queue.new
    # Queue operations are thread-safe: a thread may use any machine for them.
    Thread.new { @machine.push(q, :from_thread) }.join
    assert_equal :from_thread, @machine.shift(q)
  end

  # The push's wake goes to the first consumer, which is interrupted just
  # before the wake is submitted: the item must reach the second one.
  def test_wake_taken_by_interrupted_consumer_is_passed_on
    q = UM::Queue.new
    a = @machine.spin { @machine.shift(q) }
    b = @machine.spin { @machine.shift(q) }
    @machine.sleep(0.01) # both wait
    @machine.schedule(a, RuntimeError.new("interrupted"))
    @machine.push(q, :item)
    assert_equal :item, guarded(2, "second consumer") { @machine.join(b) }
    assert_kind_of RuntimeError, @machine.join(a)
    assert_equal 0, q.count
    assert_no_pending_ops
  end

  def test_wake_taken_by_terminated_consumer_is_passed_on
    q = UM::Queue.new
    a = @machine.spin { @machine.pop(q) }
    b = @machine.spin { @machine.pop(q) }
    @machine.sleep(0.01)
    @machine.terminate(a)
    @machine.push(q, :item)
    assert_equal :item, guarded(2, "second consumer") { @machine.join(b) }
    assert_kind_of UM::Terminate, @machine.join(a)
  end

  # The producer is interrupted before its wake reaches the kernel: the item
  # is in the queue (the push happened) and its consumer must be woken.
  def test_interrupted_producer_still_wakes
    q = UM::Queue.new
    consumer = @machine.spin { @machine.shift(q) }
    @machine.sleep(0.01)
    @machine.schedule(Fiber.current, RuntimeError.new("interrupted"))
    assert_raises(RuntimeError) { @machine.unshift(q, :item) }
    assert_equal :item, guarded(2, "consumer") { @machine.join(consumer) }
    assert_no_pending_ops
  end

  # One-shot consumers, some with timeouts; before each push the producer
  # may interrupt the oldest (or a random) waiting consumer, or itself.
  # There are more uninterrupted consumers than items, so in the end the
  # queue must be empty and every item taken exactly once.
  def test_stress_interrupted_consumers_and_producer
    skip_timing_under_gc_stress
    q = UM::Queue.new
    rng = Random.new(4321)
    got = []
    consumers = 60.times.map do |i|
      @machine.spin do
        v = i % 4 == 0 ? @machine.timeout(rng.rand(0.001..0.01), Timeout::Error) { @machine.shift(q) } : @machine.shift(q)
        got << v
      rescue Timeout::Error, RuntimeError
      end
    end
    producer = @machine.spin do
      20.times do |j|
        case rng.rand
        when 0...0.3 then (f = oldest_waiting(consumers, rng)) && @machine.terminate(f)
        when 0.3...0.4 then (f = oldest_waiting(consumers, rng)) && @machine.schedule(f, RuntimeError.new("x"))
        when 0.4...0.5 then @machine.schedule(Fiber.current, RuntimeError.new("self"))
        end
        begin
          j.even? ? @machine.push(q, j) : @machine.unshift(q, j)
          @machine.sleep(rng.rand < 0.5 ? 0 : 0.0005)
        rescue RuntimeError
        end
      end
    end
    guarded(3, "producer") { @machine.join(producer) }
    @machine.sleep(0.02) # every timeout expired, every woken consumer ran
    assert_equal 0, q.count, "items left in the queue while consumers wait"
    assert_equal (0...20).to_a, got.sort
    @machine.terminate(*consumers)
    guarded(2, "consumers") { @machine.join(*consumers) }
    assert_no_pending_ops
  end

  # The same across two threads with their machines: pushes on one machine
  # wake consumers on the other; each thread interrupts its own consumers.
  def test_stress_across_threads
    skip_timing_under_gc_stress
    result = in_child_within(10) do
      q = UM::Queue.new
      ready = UM::Queue.new
      finish = [UM::Queue.new, UM::Queue.new]
      got = []
      threads = 2.times.map do |t|
        Thread.new do
          m = UM.new
          rng = Random.new(77 + t)
          consumers = 30.times.map do |i|
            m.spin do
              got << (i % 3 == 0 ? m.timeout(rng.rand(0.001..0.01), Timeout::Error) { m.shift(q) } : m.shift(q))
            rescue Timeout::Error
            end
          end
          m.sleep(0.005)
          10.times do |j|
            if rng.rand < 0.3
              live = consumers.reject(&:done?)
              f = rng.rand < 0.5 ? live.first : live.sample(random: rng)
              m.terminate(f) if f
            end
            m.push(q, t * 100 + j)
            m.sleep(rng.rand < 0.5 ? 0 : 0.0005)
          end
          m.push(ready, t)
          m.shift(finish[t])
          m.terminate(*consumers)
          m.join(*consumers)
          :done
        end
      end
      m = UM.new
      2.times { m.shift(ready) }
      m.sleep(0.03) # every timeout expired, every woken consumer ran
      left = q.count
      finish.each { |f| m.push(f, :go) }
      threads.each(&:join)
      { left: left, got: got.sort, values: threads.map(&:value) }
    end
    assert_equal 0, result[:left], "items left in the queue while consumers wait"
    assert_equal (0...10).to_a + (100...110).to_a, result[:got]
    assert_equal %i[done done], result[:values]
  end

  def test_mailbox
    main = Fiber.current
    assert_kind_of UM::Queue, main.mailbox
    assert_same main.mailbox, main.mailbox
    f = @machine.spin { @machine.push(main.mailbox, [:hello, Fiber.current]) }
    msg, from = @machine.shift(main.mailbox)
    assert_equal :hello, msg
    assert_same f, from
  end

  def test_bad_arguments
    assert_raises(TypeError) { @machine.push([], 1) }
    assert_raises(TypeError) { @machine.shift(Queue.new) }
    assert_raises(TypeError) { @machine.pop(nil) }
  end
end
