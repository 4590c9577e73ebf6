drop table if exists user;
create table user (
  user_id integer primary key autoincrement,
  username text not null unique,
  pw_hash text not null
);

drop table if exists message;
create table message (
  message_id integer primary key autoincrement,
  author_id integer not null references user (user_id),
  text text not null,
  pub_date integer not null
);
create index message_by_date on message (pub_date desc);
