# frozen_string_literal: true

require "minitest/autorun"
require "uringmachine"
require "fileutils"
require "tmpdir"
require "timeout"
require "io/nonblock"

Warning[:experimental] = false # IO::Buffer

# Each test gets a fresh machine (@machine) and its fds are closed after it.
# UM_GC_STRESS=1 runs every test with GC.stress on; UM_GC_COMPACT=1 verifies
# compaction references after every test.
class UMTestCase < Minitest::Test
  def setup
    @machine = UM.new
    @fds = []
    GC.stress = true if ENV["UM_GC_STRESS"] == "1"
  end

  def teardown
    GC.stress = false
    @fds.each { |fd| IO.for_fd(fd, autoclose: true).close rescue nil } # rubocop:disable Style/RescueModifier
    @fds.clear
    GC.verify_compaction_references(expand_heap: true, toward: :empty) if ENV["UM_GC_COMPACT"] == "1"
  end

  # A pipe whose fds are closed after the test.
  # Writes the parts with a pause between them, so each arrives as its own
  # chunk, then closes the writer.
  def feed(w, *parts)
    @machine.spin do
      parts.each do |part|
        @machine.write(w, part)
        @machine.sleep(0.001)
      end
      @machine.close(w)
    end
  end

  def pipe
    fds = UM.pipe
    @fds.concat(fds)
    fds
  end

  def socketpair
    fds = UM.socketpair(UM::AF_UNIX, UM::SOCK_STREAM, 0)
    @fds.concat(fds)
    fds
  end

  # A fiber that reads once from fd and returns what it read.
  def spin_reader(fd, maxlen = 10, machine = @machine)
    machine.spin do
      buf = +""
      machine.read(fd, buf, maxlen)
      buf
    end
  end

  # Reads once from fd and returns what was read.
  def read_once(fd, maxlen = 10)
    buf = +""
    @machine.read(fd, buf, maxlen)
    buf
  end

  def track_fd(fd)
    @fds << fd
    fd
  end

  # Runs a block in a forked child; returns its exit status.
  def in_child(&block)
    pid = fork do
      status = begin
        block.call ? 0 : 1
      rescue Exception => e # rubocop:disable Lint/RescueException
        warn "child: #{e.class}: #{e.message}\n#{e.backtrace.first(5).join("\n")}"
        2
      end
      exit!(status)
    end
    Process.wait(pid)
    $?
  end

  # Cancelled operations finish at the next visit to the kernel.
  def assert_no_pending_ops(machine = @machine)
    machine.sleep(0.001)
    assert_equal 0, machine.metrics[:ops_pending], "operations still pending"
  end

  # Timing assertions mean nothing when every allocation runs the GC.
  def skip_timing_under_gc_stress
    skip "timing-dependent: not run under UM_GC_STRESS" if ENV["UM_GC_STRESS"] == "1"
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end
