# frozen_string_literal: true

class UringMachine
  # call-seq: file_watch(dir, mask) { |event| } -> nil
  #
  # Watches the directory +dir+ and every directory below it (those created
  # or moved in later too) for the events in +mask+ (UM::IN_* flags), and
  # yields each event as a Hash <tt>{mask:, fn:}</tt>: its UM::IN_* bits and
  # the full path of the file it concerns, as 1.0 does. Runs until the block
  # breaks (or raises, or the fiber is terminated); the inotify fd is then
  # closed. Waiting for events suspends only the calling fiber.
  #
  # Raises TypeError for a +mask+ that is not an Integer, Errno::ENOENT or
  # Errno::ENOTDIR when +dir+ is not a directory.
  #
  # @example
  #   machine.file_watch("/tmp/inbox", UM::IN_CLOSE_WRITE) do |event|
  #     puts event[:name]
  #   end
  def file_watch(dir, mask)
    raise ArgumentError, "file_watch needs a block" unless block_given?
    raise TypeError, "mask must be an Integer, not #{mask.class}" unless mask.is_a?(Integer)

    dir = File.path(dir)
    fd = UM.inotify_init
    begin
      dirs = {}
      file_watch_add(fd, dir, mask, dirs)
      loop do
        inotify_get_events(fd).each do |event|
          base = dirs[event[:wd]]
          if event[:mask].anybits?(IN_IGNORED)
            dirs.delete(event[:wd])
            next
          end
          next unless base # overflow (wd -1), or a watch just removed

          fn = event[:name].empty? ? base : File.join(base, event[:name])
          new_dir = event[:mask].anybits?(IN_ISDIR) && event[:mask].anybits?(IN_CREATE | IN_MOVED_TO)
          file_watch_add(fd, fn, mask, dirs) if new_dir
          yield({ mask: event[:mask], fn: fn })
        end
      end
    ensure
      close_async(fd)
    end
  end

  private

  # Watches dir and the directories below it; one that vanished meanwhile
  # is skipped.
  def file_watch_add(fd, dir, mask, dirs)
    dirs[inotify_add_watch(fd, dir, mask | IN_ONLYDIR)] = dir
    Dir.each_child(dir) do |name|
      path = File.join(dir, name)
      file_watch_add(fd, path, mask, dirs) if File.directory?(path) && !File.symlink?(path)
    end
  rescue Errno::ENOENT, Errno::ENOTDIR
    raise if dirs.empty?
  end
end
