# frozen_string_literal: true

require_relative "helper"

class ForkTest < UMTestCase
  def test_child_cannot_use_parent_machine
    parent = @machine
    status = in_child do
      parent.snooze
      false
    rescue UM::Error => e
      e.message.include?("parent process")
    end
    assert status.success?
    assert_equal 0.0.class, @machine.sleep(0.001).class # the parent's machine is fine
  end

  def test_thread_machine_is_renewed_in_child
    parent = Thread.current.machine
    r, w = pipe
    status = in_child do
      m = Thread.current.machine
      next false if m.equal?(parent)

      m.write(w, "from child")
      true
    end
    assert status.success?
    assert_equal "from child", read_once(r, 20)
    assert_same parent, Thread.current.machine
  end

  def test_fork_with_pending_operations
    r, w = pipe
    f = spin_reader(r, 20)
    @machine.snooze
    status = in_child do
      m = UM.new
      m.write(w, "child")
      true
    end
    assert status.success?
    assert_equal "child", @machine.join(f)
  end

  def test_pidfd
    pid = Process.spawn("sleep", "10")
    pidfd = track_fd(UM.pidfd_open(pid))
    assert_kind_of Integer, pidfd
    assert_equal 0, UM.pidfd_send_signal(pidfd, UM::SIGTERM)
    # A pidfd becomes readable when the process exits.
    assert_equal UM::POLLIN, @machine.poll(pidfd, UM::POLLIN)
    _, status = Process.wait2(pid)
    assert_equal UM::SIGTERM, status.termsig
  end

  def test_pidfd_errors
    assert_raises(Errno::ESRCH) { UM.pidfd_open(2**22 + 12_345) }
    assert_raises(Errno::EBADF) { UM.pidfd_send_signal(9999, UM::SIGTERM) }
    assert_raises(TypeError) { UM.pidfd_open("1") }
    pid = Process.spawn("true")
    pidfd = track_fd(UM.pidfd_open(pid))
    Process.wait(pid)
    assert_raises(Errno::ESRCH) { UM.pidfd_send_signal(pidfd, UM::SIGTERM) }
  end
end
