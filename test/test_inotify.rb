# frozen_string_literal: true

require_relative "helper"

# inotify on the ring (1.0): UM.inotify_init, #inotify_add_watch,
# #inotify_get_events, #file_watch; real files in a temporary directory.
class InotifyTest < UMTestCase
  def setup
    super
    @dir = Dir.mktmpdir("um-inotify")
  end

  def teardown
    FileUtils.rm_rf(@dir)
    super
  end

  def path(*names) = File.join(@dir, *names)

  # Every wait is bounded: a missing event fails the test instead of hanging.
  def within(seconds = 5, &block)
    @machine.timeout(seconds, Timeout::Error, &block)
  end

  # Events (after those already seen) until one matching the block arrives.
  def events_until(fd, seen = [], &match)
    seen = seen.dup
    within { seen.concat(@machine.inotify_get_events(fd)) until seen.any?(&match) }
    seen
  end

  def test_constants
    assert_equal 0x100, UM::IN_CREATE
    assert_equal 0x200, UM::IN_DELETE
    assert_equal 0x2, UM::IN_MODIFY
    assert_equal 0x40, UM::IN_MOVED_FROM
    assert_equal 0x80, UM::IN_MOVED_TO
    assert_equal 0x8, UM::IN_CLOSE_WRITE
    assert_equal 0x8000, UM::IN_IGNORED
    assert_equal 0x40000000, UM::IN_ISDIR
    assert_equal 0xfff, UM::IN_ALL_EVENTS
  end

  def test_get_events
    fd = track_fd(UM.inotify_init)
    assert_kind_of Integer, fd
    wd = @machine.inotify_add_watch(fd, @dir, UM::IN_CREATE | UM::IN_DELETE | UM::IN_MODIFY | UM::IN_CLOSE_WRITE)
    assert_kind_of Integer, wd
    assert_equal wd, UM.inotify_add_watch(fd, @dir, UM::IN_CREATE | UM::IN_DELETE | UM::IN_MODIFY | UM::IN_CLOSE_WRITE)

    f = @machine.spin { within { @machine.inotify_get_events(fd) } }
    @machine.snooze
    refute f.done?, "get_events waits for events"
    File.write(path("a.txt"), "hello")
    events = @machine.join(f)
    assert_kind_of Array, events
    assert_equal({ wd: wd, mask: UM::IN_CREATE, name: "a.txt" }, events.first)

    rest = events_until(fd, events) { |e| e[:mask] == UM::IN_CLOSE_WRITE }
    assert_includes rest, { wd: wd, mask: UM::IN_MODIFY, name: "a.txt" }
    assert_includes rest, { wd: wd, mask: UM::IN_CLOSE_WRITE, name: "a.txt" }

    File.unlink(path("a.txt"))
    Dir.mkdir(path("sub"))
    events = events_until(fd) { |e| e[:name] == "sub" }
    assert_includes events, { wd: wd, mask: UM::IN_DELETE, name: "a.txt" }
    assert_includes events, { wd: wd, mask: UM::IN_CREATE | UM::IN_ISDIR, name: "sub" }
  end

  # An event on the watched item itself has no name: "".
  def test_event_on_watched_file_and_rm_watch
    fd = track_fd(UM.inotify_init)
    File.write(path("f"), "")
    wd = @machine.inotify_add_watch(fd, path("f"), UM::IN_MODIFY)
    File.write(path("f"), "x")
    events = events_until(fd) { |e| e[:mask] == UM::IN_MODIFY }
    assert_equal({ wd: wd, mask: UM::IN_MODIFY, name: "" }, events.first)
    assert_equal 0, @machine.inotify_rm_watch(fd, wd)
    events = events_until(fd) { |e| e[:mask] == UM::IN_IGNORED }
    assert_equal wd, events.last[:wd]
    assert_raises(Errno::EINVAL) { @machine.inotify_rm_watch(fd, wd) }
  end

  def test_many_events_in_one_read
    fd = track_fd(UM.inotify_init)
    @machine.inotify_add_watch(fd, @dir, UM::IN_CREATE)
    names = 200.times.map { |i| "file-with-a-longish-name-#{i}" }
    names.each { |n| File.write(path(n), "") }
    got = []
    within { got.concat(@machine.inotify_get_events(fd).map { |e| e[:name] }) while got.size < names.size }
    assert_equal names, got
  end

  def test_get_events_is_cancelled_by_timeout
    fd = track_fd(UM.inotify_init)
    @machine.inotify_add_watch(fd, @dir, UM::IN_CREATE)
    t0 = monotonic
    assert_raises(Timeout::Error) { @machine.timeout(0.05, Timeout::Error) { @machine.inotify_get_events(fd) } }
    assert_operator monotonic - t0, :<, 2
    assert_no_pending_ops
  end

  def test_errors
    fd = track_fd(UM.inotify_init)
    e = assert_raises(Errno::ENOENT) { @machine.inotify_add_watch(fd, path("missing"), UM::IN_CREATE) }
    assert_match(/inotify_add_watch/, e.message)
    assert_raises(TypeError) { @machine.inotify_add_watch(fd, path, "1") }
    assert_raises(TypeError) { @machine.inotify_add_watch(fd, 123, UM::IN_CREATE) }
    assert_raises(TypeError) { @machine.inotify_add_watch("fd", @dir, UM::IN_CREATE) }
    assert_raises(ArgumentError) { @machine.inotify_add_watch(fd, @dir, -1) }
    assert_raises(ArgumentError) { @machine.inotify_add_watch(fd, @dir, 2**40) }
    assert_raises(Errno::EINVAL) { @machine.inotify_add_watch(fd, @dir, 0) }
    r, _w = pipe
    assert_raises(Errno::EINVAL) { @machine.inotify_add_watch(r, @dir, UM::IN_CREATE) }
    assert_raises(Errno::EBADF) { @machine.inotify_get_events(9999) }
    assert_raises(TypeError) { @machine.inotify_get_events(nil) }
    assert_raises(ArgumentError) { @machine.file_watch(@dir, UM::IN_CREATE) }
    assert_raises(TypeError) { @machine.file_watch(@dir, nil) { nil } }
    assert_raises(Errno::ENOENT) { @machine.file_watch(path("missing"), UM::IN_CREATE) { nil } }
    File.write(path("plain"), "")
    assert_raises(Errno::ENOTDIR) { @machine.file_watch(path("plain"), UM::IN_CREATE) { nil } }
  end

  def test_file_watch
    Dir.mkdir(path("old"))
    events = []
    watcher = @machine.spin do
      within do
        @machine.file_watch(@dir, UM::IN_CREATE | UM::IN_DELETE | UM::IN_MOVED_FROM | UM::IN_MOVED_TO | UM::IN_CLOSE_WRITE) do |event|
          events << event
          break if event[:fn] == path("new", "deep.txt") && event[:mask] == UM::IN_CLOSE_WRITE
        end
      end
      :broke
    end
    @machine.snooze
    File.write(path("top.txt"), "1")
    File.write(path("old", "inner.txt"), "2")
    File.rename(path("top.txt"), path("moved.txt"))
    File.unlink(path("moved.txt"))
    Dir.mkdir(path("new"))
    # the new directory is watched once its creation was seen
    @machine.sleep(0.01) until events.any? { |e| e[:fn] == path("new") }
    File.write(path("new", "deep.txt"), "3")
    assert_equal :broke, @machine.join(watcher)

    assert_includes events, { mask: UM::IN_CREATE, fn: path("top.txt") }
    assert_includes events, { mask: UM::IN_CLOSE_WRITE, fn: path("top.txt") }
    assert_includes events, { mask: UM::IN_CREATE, fn: path("old", "inner.txt") }
    assert_includes events, { mask: UM::IN_MOVED_FROM, fn: path("top.txt") }
    assert_includes events, { mask: UM::IN_MOVED_TO, fn: path("moved.txt") }
    assert_includes events, { mask: UM::IN_DELETE, fn: path("moved.txt") }
    assert_includes events, { mask: UM::IN_CREATE | UM::IN_ISDIR, fn: path("new") }
    assert_includes events, { mask: UM::IN_CREATE, fn: path("new", "deep.txt") }
    assert_no_pending_ops
  end

  # Breaking out closes the inotify fd.
  def test_file_watch_closes_its_fd
    before = Dir.children("/proc/self/fd").size
    f = @machine.spin { within { @machine.file_watch(@dir, UM::IN_CREATE) { |e| break e } } }
    @machine.snooze
    File.write(path("x"), "")
    assert_equal({ mask: UM::IN_CREATE, fn: path("x") }, @machine.join(f))
    @machine.sleep(0.01)
    assert_equal before, Dir.children("/proc/self/fd").size
  end
end
