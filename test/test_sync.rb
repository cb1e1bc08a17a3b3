# frozen_string_literal: true

require_relative "helper"

class MutexTest < UMTestCase
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

  def test_bad_arguments
    assert_raises(TypeError) { @machine.synchronize(Mutex.new) { 1 } }
    assert_raises(TypeError) { @machine.synchronize(nil) { 1 } }
    assert_raises(LocalJumpError) { @machine.synchronize(UM::Mutex.new) }
  end
end

class QueueTest < UMTestCase
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
