# frozen_string_literal: true

require_relative "helper"
require "open3"
require "rbconfig"
require "timeout"

# Threads killed while their fiber waits on the machine: Thread#kill and the
# kill of every thread at process exit jump with a tag whose $! is no
# exception; the machine must let that jump go on unchanged.
class ThreadKillTest < Minitest::Test
  LOAD_DIRS = [
    File.dirname($LOADED_FEATURES.grep(/um_ext\.so\z/).first),
    File.expand_path("../lib", __dir__)
  ].freeze

  def run_script(code)
    args = [RbConfig.ruby, *LOAD_DIRS.flat_map { |dir| ["-I", dir] }, "-ruringmachine", "-e", code]
    Open3.popen3(*args) do |stdin, stdout, stderr, wait|
      stdin.close
      unless wait.join(20)
        Process.kill(:KILL, wait.pid)
        flunk "the process did not end within 20 s"
      end
      [stdout.read, stderr.read, wait.value]
    end
  end

  def test_threads_waiting_on_the_machine_are_killed_at_exit
    out, err, status = run_script(<<~RUBY)
      Thread.new { m = UM.new; r, _w = UM.pipe; m.read(r, +"", 10) }
      Thread.new { UM.new.shift(UM::Queue.new) }
      Thread.new { m = UM.new; m.timeout(60, RuntimeError) { m.sleep(30) } }
      sleep 0.2
      puts "exiting"
    RUBY
    assert_equal "exiting\n", out
    assert_equal "", err
    assert status.success?, status.inspect
  end

  def test_thread_kill_while_waiting
    out, err, status = run_script(<<~RUBY)
      t = Thread.new { m = UM.new; r, _w = UM.pipe; m.read(r, +"", 10) }
      sleep 0.1
      t.kill
      p [t.join(5).equal?(t), t.status]
    RUBY
    assert_equal "[true, false]\n", out
    assert_equal "", err
    assert status.success?, status.inspect
  end
end
